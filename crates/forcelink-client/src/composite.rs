//! Composite resources: `composite` (up to 25 dependent subrequests, one round trip) and sObject
//! collections (create / update / upsert / delete / retrieve many records), chunked into
//! Salesforce's 200 records per call with per-record results in request order.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::client::{Client, Idempotency, Req};
use crate::error::ClientError;
use crate::sobjects::SaveResult;
use crate::types::{FieldName, RecordId, SObjectType};

/// Most subrequests in one composite request.
pub const MAX_COMPOSITE_SUBREQUESTS: usize = 25;
/// Most records per sObject-collection call (create, update, upsert, delete).
pub const COLLECTION_CHUNK: usize = 200;
/// Most ids per sObject-collection retrieve.
pub const RETRIEVE_CHUNK: usize = 2000;

/// One subrequest of a composite request; `url` starts with `/services/data/vXX.X/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeSubrequest {
    /// `method`: `GET`, `POST`, `PATCH`, `PUT` or `DELETE`.
    pub method: String,
    /// `url`: the resource, `/services/data/vXX.X/…` (see [`Client::data_url`]).
    pub url: String,
    /// `referenceId`: names the subrequest so later ones can use its answer (`@{ref.id}`).
    pub reference_id: String,
    /// `body`: the subrequest's JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// `httpHeaders`: extra headers for the subrequest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_headers: Option<BTreeMap<String, String>>,
}

/// `{"compositeResponse": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeResponse {
    /// `compositeResponse`: one subresponse per subrequest, in request order.
    pub composite_response: Vec<CompositeSubresponse>,
}

/// One subresponse; `body` is whatever the subrequest answered (an error array on failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeSubresponse {
    /// `body`: the subrequest's answer (an error array on failure).
    #[serde(default)]
    pub body: Value,
    /// `httpHeaders` of the subresponse.
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    /// `httpStatusCode` of the subresponse.
    pub http_status_code: u16,
    /// `referenceId` of the subrequest it answers.
    pub reference_id: String,
}

impl Client {
    /// `POST /composite`.
    pub fn composite(&self) -> CompositeBuilder<'_> {
        CompositeBuilder { client: self, all_or_none: false, collate: None, requests: Vec::new() }
    }

    /// sObject collections.
    pub fn collections(&self) -> CollectionsHandler<'_> {
        CollectionsHandler { client: self }
    }

    /// `/services/data/vXX.X/…` for a subrequest URL.
    pub fn data_url(&self, relative: &str) -> String {
        format!("/services/data/{}/{}", self.version.segment(), relative.trim_start_matches('/'))
    }
}

/// See [`Client::composite`].
#[derive(Debug)]
pub struct CompositeBuilder<'c> {
    client: &'c Client,
    all_or_none: bool,
    collate: Option<bool>,
    requests: Vec<CompositeSubrequest>,
}

impl CompositeBuilder<'_> {
    /// Roll everything back when one subrequest fails. Defaults to false.
    pub fn all_or_none(mut self, yes: bool) -> Self {
        self.all_or_none = yes;
        self
    }
    /// `collateSubrequests`. Salesforce's default (true from API 49.0) when not set.
    pub fn collate_subrequests(mut self, yes: bool) -> Self {
        self.collate = Some(yes);
        self
    }
    /// Adds a subrequest (at most [`MAX_COMPOSITE_SUBREQUESTS`]).
    pub fn request(mut self, sub: CompositeSubrequest) -> Self {
        self.requests.push(sub);
        self
    }

    /// Never retried once Salesforce may have seen it (subrequests may create records).
    pub async fn send(self) -> Result<CompositeResponse, ClientError> {
        if self.requests.is_empty() || self.requests.len() > MAX_COMPOSITE_SUBREQUESTS {
            return Err(ClientError::InvalidInput(format!(
                "a composite request takes 1 to {MAX_COMPOSITE_SUBREQUESTS} subrequests, not {}",
                self.requests.len()
            )));
        }
        let mut body = json!({"allOrNone": self.all_or_none, "compositeRequest": self.requests});
        if let Some(c) = self.collate {
            body["collateSubrequests"] = json!(c);
        }
        self.client.json(Req::data(Method::POST, ["composite"]).json(&body)?).await
    }
}

/// See [`Client::collections`]. Each call is split into chunks of [`COLLECTION_CHUNK`]
/// records sent one after another; `all_or_none` applies within each chunk (a failure in a
/// later chunk does not undo an earlier one).
#[derive(Debug, Clone, Copy)]
pub struct CollectionsHandler<'c> {
    client: &'c Client,
}

/// What a collection call does.
#[derive(Debug, Clone)]
enum Operation {
    Create,
    Update,
    Upsert(SObjectType, FieldName),
    Delete,
}

/// See [`CollectionsHandler`].
#[derive(Debug)]
pub struct CollectionBuilder<'c> {
    client: &'c Client,
    op: Operation,
    records: Result<Vec<Value>, ClientError>,
    all_or_none: bool,
}

fn with_type(sobject: &SObjectType, records: Vec<Value>) -> Result<Vec<Value>, ClientError> {
    records
        .into_iter()
        .map(|r| match r {
            Value::Object(mut m) => {
                let attrs = m.entry("attributes").or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(a) = attrs {
                    a.entry("type").or_insert_with(|| json!(sobject.as_str()));
                }
                Ok(Value::Object(m))
            }
            other => Err(ClientError::InvalidInput(format!("a record must be a JSON object, not {other}"))),
        })
        .collect()
}

impl<'c> CollectionsHandler<'c> {
    /// `POST /composite/sobjects`: inserts. Not retried once Salesforce may have seen a chunk.
    pub fn create(&self, sobject: &str, records: Vec<Value>) -> CollectionBuilder<'c> {
        let op = SObjectType::new(sobject);
        let records = op.as_ref().map_err(Clone::clone).and_then(|t| with_type(t, records));
        self.builder(op.map(|_| Operation::Create), records)
    }

    /// `PATCH /composite/sobjects`: each record carries its `Id` (or `id`).
    pub fn update(&self, sobject: &str, records: Vec<Value>) -> CollectionBuilder<'c> {
        let op = SObjectType::new(sobject);
        let records = op.as_ref().map_err(Clone::clone).and_then(|t| with_type(t, records)).and_then(|rs| {
            for r in &rs {
                let id = r.get("Id").or_else(|| r.get("id")).and_then(Value::as_str).unwrap_or("");
                RecordId::new(id)?;
            }
            Ok(rs)
        });
        self.builder(op.map(|_| Operation::Update), records)
    }

    /// `PATCH /composite/sobjects/{Type}/{ExternalIdField}`.
    pub fn upsert(&self, sobject: &str, external_id_field: &str, records: Vec<Value>) -> CollectionBuilder<'c> {
        let op = SObjectType::new(sobject).and_then(|t| Ok((t, FieldName::new(external_id_field)?)));
        let records = op.as_ref().map_err(Clone::clone).and_then(|(t, _)| with_type(t, records));
        self.builder(op.map(|(t, f)| Operation::Upsert(t, f)), records)
    }

    /// `DELETE /composite/sobjects?ids=…`.
    pub fn delete<I, S>(&self, ids: I) -> CollectionBuilder<'c>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let records = ids.into_iter().map(|i| RecordId::new(i.as_ref()).map(|id| json!(id.as_str()))).collect();
        self.builder(Ok(Operation::Delete), records)
    }

    /// `POST /composite/sobjects/{Type}` with `{"ids","fields"}`: records in the order of `ids`
    /// (`null` for ids not found).
    pub fn retrieve<I, S, F, G>(&self, sobject: &str, ids: I, fields: F) -> RetrieveManyBuilder<'c>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        F: IntoIterator<Item = G>,
        G: AsRef<str>,
    {
        let parsed = (|| {
            let t = SObjectType::new(sobject)?;
            let ids = ids.into_iter().map(|i| RecordId::new(i.as_ref())).collect::<Result<Vec<_>, _>>()?;
            let fields = fields.into_iter().map(|f| FieldName::new(f.as_ref())).collect::<Result<Vec<_>, _>>()?;
            if fields.is_empty() {
                return Err(ClientError::InvalidInput("name at least one field to retrieve".to_owned()));
            }
            Ok((t, ids, fields))
        })();
        RetrieveManyBuilder { client: self.client, parsed }
    }

    fn builder(
        &self,
        op: Result<Operation, ClientError>,
        records: Result<Vec<Value>, ClientError>,
    ) -> CollectionBuilder<'c> {
        let records = op.as_ref().map_err(Clone::clone).and(records);
        CollectionBuilder { client: self.client, op: op.unwrap_or(Operation::Delete), records, all_or_none: false }
    }
}

impl CollectionBuilder<'_> {
    /// Roll back a chunk when one of its records fails. Defaults to false.
    pub fn all_or_none(mut self, yes: bool) -> Self {
        self.all_or_none = yes;
        self
    }

    /// One result per record, in the order given.
    pub async fn send(self) -> Result<Vec<SaveResult>, ClientError> {
        let records = self.records?;
        let mut out = Vec::with_capacity(records.len());
        for chunk in records.chunks(COLLECTION_CHUNK) {
            let req = match &self.op {
                Operation::Create => Req::data(Method::POST, ["composite", "sobjects"])
                    .json(&json!({"allOrNone": self.all_or_none, "records": chunk}))?,
                Operation::Update => Req::data(Method::PATCH, ["composite", "sobjects"])
                    .json(&json!({"allOrNone": self.all_or_none, "records": chunk}))?,
                Operation::Upsert(t, f) => Req::data(Method::PATCH, ["composite", "sobjects", t.as_str(), f.as_str()])
                    .json(&json!({"allOrNone": self.all_or_none, "records": chunk}))?,
                Operation::Delete => {
                    let ids: Vec<&str> = chunk.iter().filter_map(Value::as_str).collect();
                    Req::data(Method::DELETE, ["composite", "sobjects"])
                        .query("ids", ids.join(","))
                        .query("allOrNone", self.all_or_none.to_string())
                }
            };
            let results: Vec<SaveResult> = self.client.json(req).await?;
            if results.len() != chunk.len() {
                return Err(ClientError::UnexpectedResponse {
                    endpoint: "composite/sobjects".to_owned(),
                    status: 200,
                    kind: crate::error::BodyKind::Shape(format!(
                        "{} results for {} records",
                        results.len(),
                        chunk.len()
                    )),
                    excerpt: String::new(),
                });
            }
            out.extend(results);
        }
        Ok(out)
    }
}

/// See [`CollectionsHandler::retrieve`].
#[derive(Debug)]
pub struct RetrieveManyBuilder<'c> {
    client: &'c Client,
    parsed: Result<(SObjectType, Vec<RecordId>, Vec<FieldName>), ClientError>,
}

impl RetrieveManyBuilder<'_> {
    /// Sends, in chunks of [`RETRIEVE_CHUNK`] ids; `None` where a record was not found.
    pub async fn send(self) -> Result<Vec<Option<Value>>, ClientError> {
        self.send_as().await
    }

    /// [`RetrieveManyBuilder::send`], each record decoded as `T`.
    pub async fn send_as<T: DeserializeOwned>(self) -> Result<Vec<Option<T>>, ClientError> {
        let (t, ids, fields) = self.parsed?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(RETRIEVE_CHUNK) {
            let req = Req::data(Method::POST, ["composite", "sobjects", t.as_str()])
                .json(&json!({"ids": chunk, "fields": fields}))?
                .idempotency(Idempotency::Idempotent);
            let page: Vec<Option<T>> = self.client.json(req).await?;
            out.extend(page);
        }
        Ok(out)
    }
}
