//! sObject resources: describeGlobal, describe (cached per connection and version, revalidated
//! with `If-Modified-Since`), and record create / retrieve / update / upsert / delete.
//!
//! ```no_run
//! # async fn f(client: forcelink_client::Client) -> Result<(), forcelink_client::ClientError> {
//! let account = client.sobject("Account")?;
//! let created = account.create(&serde_json::json!({"Name": "Acme"})).send().await?;
//! let record = account.retrieve(&created.id)?.fields(["Name"])?.send().await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::Ordering;

use reqwest::Method;
use reqwest::header::{self, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{Client, Idempotency, Req};
use crate::describe::CachedDescribe;
pub use crate::describe::{DescribeGlobal, FieldDescribe, GlobalSObject, PicklistValue, SObjectDescribe};
use crate::error::{ApiError, ClientError};
use crate::types::{FieldName, RecordId, SObjectType};

/// The answer to a create (and, from API 46.0, an upsert): `{"id","success","errors"}`; also
/// each element of an sObject-collection answer (where `id` is absent on failure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveResult {
    /// `id` of the record; absent when the save failed.
    #[serde(default)]
    pub id: Option<String>,
    /// `success`: whether the record was saved.
    pub success: bool,
    /// `errors`: why the save failed (empty on success).
    #[serde(default)]
    pub errors: Vec<ApiError>,
    /// Upserts from API 46.0: whether a record was inserted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

/// A successful create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The new record's id.
    pub id: RecordId,
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upserted {
    /// The record's id; `None` only for an update answered `204` (API before 46.0).
    pub id: Option<String>,
    /// True when the upsert inserted a record, false when it updated one.
    pub created: bool,
}

impl Client {
    /// `GET /services/data/vXX.X/sobjects`.
    pub fn describe_global(&self) -> DescribeGlobalBuilder<'_> {
        DescribeGlobalBuilder { client: self }
    }

    /// A handler for one object; `name` is checked to be an API name.
    pub fn sobject(&self, name: &str) -> Result<SObjectHandler<'_>, ClientError> {
        Ok(SObjectHandler { client: self, name: SObjectType::new(name)? })
    }
}

/// See [`Client::describe_global`].
#[derive(Debug)]
pub struct DescribeGlobalBuilder<'c> {
    client: &'c Client,
}

impl DescribeGlobalBuilder<'_> {
    /// Sends; the org's objects.
    pub async fn send(self) -> Result<DescribeGlobal, ClientError> {
        self.client.json(Req::data(Method::GET, ["sobjects"])).await
    }
}

/// Operations on one sObject type.
#[derive(Debug, Clone)]
pub struct SObjectHandler<'c> {
    client: &'c Client,
    name: SObjectType,
}

impl<'c> SObjectHandler<'c> {
    /// The object's API name.
    pub fn name(&self) -> &SObjectType {
        &self.name
    }

    /// The describe, from the cache while it is younger than the client's describe max age,
    /// else revalidated with `If-Modified-Since` (`304` keeps the cached one).
    pub fn describe(&self) -> DescribeBuilder<'c> {
        DescribeBuilder { client: self.client, name: self.name.clone(), force: false }
    }

    /// `POST /sobjects/{Type}`. Never retried once Salesforce may have seen it.
    pub fn create<T: Serialize + ?Sized>(&self, fields: &T) -> CreateBuilder<'c> {
        CreateBuilder {
            client: self.client,
            name: self.name.clone(),
            body: serde_json::to_value(fields).map_err(|e| ClientError::InvalidInput(e.to_string())),
        }
    }

    /// `GET /sobjects/{Type}/{id}`.
    pub fn retrieve(&self, id: impl AsRef<str>) -> Result<RetrieveBuilder<'c>, ClientError> {
        Ok(RetrieveBuilder {
            client: self.client,
            name: self.name.clone(),
            id: RecordId::new(id.as_ref())?,
            fields: Vec::new(),
        })
    }

    /// `PATCH /sobjects/{Type}/{id}` (answered `204`).
    pub fn update<T: Serialize + ?Sized>(
        &self,
        id: impl AsRef<str>,
        fields: &T,
    ) -> Result<UpdateBuilder<'c>, ClientError> {
        Ok(UpdateBuilder {
            client: self.client,
            name: self.name.clone(),
            id: RecordId::new(id.as_ref())?,
            body: serde_json::to_value(fields).map_err(|e| ClientError::InvalidInput(e.to_string()))?,
        })
    }

    /// `PATCH /sobjects/{Type}/{ExternalIdField}/{value}`: inserts or updates by external id.
    /// Answers: 201 created, 200 (API ≥ 46.0) or 204 updated, 300 several matches
    /// ([`ClientError::MultipleMatches`]). Idempotent, so retried like an update.
    pub fn upsert<T: Serialize + ?Sized>(
        &self,
        external_id_field: &str,
        value: &str,
        fields: &T,
    ) -> Result<UpsertBuilder<'c>, ClientError> {
        if value.is_empty() {
            return Err(ClientError::InvalidInput("the external id value is empty".to_owned()));
        }
        Ok(UpsertBuilder {
            client: self.client,
            name: self.name.clone(),
            field: FieldName::new(external_id_field)?,
            value: value.to_owned(),
            body: serde_json::to_value(fields).map_err(|e| ClientError::InvalidInput(e.to_string()))?,
            update_only: false,
        })
    }

    /// `DELETE /sobjects/{Type}/{id}` (answered `204`).
    pub fn delete(&self, id: impl AsRef<str>) -> Result<DeleteBuilder<'c>, ClientError> {
        Ok(DeleteBuilder { client: self.client, name: self.name.clone(), id: RecordId::new(id.as_ref())? })
    }
}

/// See [`SObjectHandler::describe`].
#[derive(Debug)]
pub struct DescribeBuilder<'c> {
    client: &'c Client,
    name: SObjectType,
    force: bool,
}

impl DescribeBuilder<'_> {
    /// Revalidates with Salesforce even when the cached describe is young.
    pub fn revalidate(mut self) -> Self {
        self.force = true;
        self
    }

    /// Sends; the describe, shared with the cache.
    pub async fn send(self) -> Result<Arc<SObjectDescribe>, ClientError> {
        let inner = &self.client.inner;
        let key = (self.client.version.as_str().to_owned(), self.name.as_str().to_ascii_lowercase());
        let now = inner.clock.now();
        let cached = inner.describes.lock().get(&key).cloned();
        if let Some(c) = &cached
            && !self.force
            && now.duration_since(c.fetched_at).is_ok_and(|age| age < inner.describe_max_age)
        {
            inner.counters.describe_cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(c.describe.clone());
        }
        let mut req = Req::data(Method::GET, ["sobjects", self.name.as_str(), "describe"]);
        if let Some(c) = &cached
            && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(c.validator))
        {
            req = req.header(header::IF_MODIFIED_SINCE, v);
        }
        let resp = self.client.execute(req).await?;
        let fresh = if resp.status == 304 {
            let Some(c) = cached else {
                return Err(ClientError::UnexpectedResponse {
                    endpoint: resp.endpoint,
                    status: 304,
                    kind: crate::error::BodyKind::Empty,
                    excerpt: "304 Not Modified without a cached describe".to_owned(),
                });
            };
            inner.counters.describe_not_modified.fetch_add(1, Ordering::Relaxed);
            CachedDescribe { fetched_at: now, ..c }
        } else {
            inner.counters.describe_fetches.fetch_add(1, Ordering::Relaxed);
            // UNCONFIRMED whether describe answers carry Last-Modified; the client's own time of
            // the fetch is the fallback validator.
            let validator = resp
                .headers
                .get(header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .unwrap_or(now);
            CachedDescribe { describe: Arc::new(resp.json()?), fetched_at: now, validator }
        };
        let out = fresh.describe.clone();
        inner.describes.lock().insert(key, fresh);
        Ok(out)
    }
}

/// See [`SObjectHandler::create`].
#[derive(Debug)]
pub struct CreateBuilder<'c> {
    client: &'c Client,
    name: SObjectType,
    body: Result<Value, ClientError>,
}

impl CreateBuilder<'_> {
    /// Sends; a failed create (an error in a 2xx answer included) is [`ClientError::Api`].
    pub async fn send(self) -> Result<Created, ClientError> {
        let req = Req::data(Method::POST, ["sobjects", self.name.as_str()]).json(&self.body?)?;
        let resp = self.client.execute(req).await?;
        let r: SaveResult = resp.json()?;
        match (r.success, r.id) {
            (true, Some(id)) => Ok(Created { id: RecordId::new(id)? }),
            (_, _) => Err(ClientError::Api {
                endpoint: resp.endpoint,
                error: r.errors.into_iter().next().unwrap_or(ApiError {
                    status: resp.status,
                    error_code: "UNKNOWN".to_owned(),
                    message: "the create answer reported no success and no error".to_owned(),
                    fields: Vec::new(),
                }),
                others: Vec::new(),
            }),
        }
    }
}

/// See [`SObjectHandler::retrieve`].
#[derive(Debug)]
pub struct RetrieveBuilder<'c> {
    client: &'c Client,
    name: SObjectType,
    id: RecordId,
    fields: Vec<FieldName>,
}

impl RetrieveBuilder<'_> {
    /// Only these fields (`?fields=A,B`); all fields without it.
    pub fn fields<I, S>(mut self, fields: I) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for f in fields {
            self.fields.push(FieldName::new(f.as_ref())?);
        }
        Ok(self)
    }

    /// The record as JSON (with `attributes`).
    pub async fn send(self) -> Result<Value, ClientError> {
        self.send_as().await
    }

    /// The record as the caller's type.
    pub async fn send_as<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let mut req = Req::data(Method::GET, ["sobjects", self.name.as_str(), self.id.as_str()]);
        if !self.fields.is_empty() {
            let list: Vec<&str> = self.fields.iter().map(FieldName::as_str).collect();
            req = req.query("fields", list.join(","));
        }
        self.client.json(req).await
    }
}

/// See [`SObjectHandler::update`].
#[derive(Debug)]
pub struct UpdateBuilder<'c> {
    client: &'c Client,
    name: SObjectType,
    id: RecordId,
    body: Value,
}

impl UpdateBuilder<'_> {
    /// Sends `PATCH /sobjects/{Type}/{id}`; Salesforce answers `204` with no body.
    pub async fn send(self) -> Result<(), ClientError> {
        let req = Req::data(Method::PATCH, ["sobjects", self.name.as_str(), self.id.as_str()]).json(&self.body)?;
        self.client.execute(req).await.map(|_| ())
    }
}

/// See [`SObjectHandler::upsert`].
#[derive(Debug)]
pub struct UpsertBuilder<'c> {
    client: &'c Client,
    name: SObjectType,
    field: FieldName,
    value: String,
    body: Value,
    update_only: bool,
}

impl UpsertBuilder<'_> {
    /// `?updateOnly=true`: never insert (Salesforce answers 404 when nothing matches).
    pub fn update_only(mut self, yes: bool) -> Self {
        self.update_only = yes;
        self
    }

    /// Sends `PATCH /sobjects/{Type}/{field}/{value}`; several matches are [`ClientError::MultipleMatches`].
    pub async fn send(self) -> Result<Upserted, ClientError> {
        let mut req = Req::data(Method::PATCH, ["sobjects", self.name.as_str(), self.field.as_str(), &self.value])
            .json(&self.body)?
            .idempotency(Idempotency::Idempotent);
        if self.update_only {
            req = req.query("updateOnly", "true");
        }
        let resp = self.client.execute(req).await?;
        match resp.status {
            204 => Ok(Upserted { id: None, created: false }),
            300 => {
                let urls: Vec<String> = resp.json()?;
                Err(ClientError::MultipleMatches { endpoint: resp.endpoint, urls })
            }
            status => {
                let r: SaveResult = resp.json()?;
                Ok(Upserted { id: r.id, created: r.created.unwrap_or(status == 201) })
            }
        }
    }
}

/// See [`SObjectHandler::delete`].
#[derive(Debug)]
pub struct DeleteBuilder<'c> {
    client: &'c Client,
    name: SObjectType,
    id: RecordId,
}

impl DeleteBuilder<'_> {
    /// Sends `DELETE /sobjects/{Type}/{id}`.
    pub async fn send(self) -> Result<(), ClientError> {
        let req = Req::data(Method::DELETE, ["sobjects", self.name.as_str(), self.id.as_str()]);
        self.client.execute(req).await.map(|_| ())
    }
}
