//! Org-level resources: the versions list, the resources of a version, limits, and SOSL search.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{Client, Req, Target};
use crate::error::ClientError;
use crate::version::VersionInfo;

/// One entry of `GET /limits`: `{"Max": 15000, "Remaining": 14998}`, with nested per-feature
/// entries for some limits (e.g. `PermissionSets.CreateCustom`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// `Max`: the limit.
    #[serde(rename = "Max")]
    pub max: i64,
    /// `Remaining`: what is left of it.
    #[serde(rename = "Remaining")]
    pub remaining: i64,
    /// Per-feature entries nested under the limit, by name.
    #[serde(flatten)]
    pub breakdown: BTreeMap<String, Limit>,
}

/// `GET /limits`, by limit name.
pub type Limits = BTreeMap<String, Limit>;

impl Client {
    /// `GET /services/data/`: the API versions the org speaks.
    pub fn versions(&self) -> VersionsBuilder<'_> {
        VersionsBuilder { client: self }
    }

    /// `GET /services/data/vXX.X/`: resource name → URL (`identity` is absolute).
    pub fn resources(&self) -> ResourcesBuilder<'_> {
        ResourcesBuilder { client: self }
    }

    /// `GET /limits`.
    pub fn limits(&self) -> LimitsBuilder<'_> {
        LimitsBuilder { client: self }
    }

    /// `GET /search?q=<SOSL>`.
    pub fn search(&self, sosl: impl Into<String>) -> SearchBuilder<'_> {
        SearchBuilder { client: self, sosl: sosl.into() }
    }
}

/// See [`Client::versions`].
#[derive(Debug)]
pub struct VersionsBuilder<'c> {
    client: &'c Client,
}

impl VersionsBuilder<'_> {
    /// Sends; every version the org speaks, as Salesforce lists them.
    pub async fn send(self) -> Result<Vec<VersionInfo>, ClientError> {
        self.client.json(Req::new(Method::GET, Target::Versions)).await
    }
}

/// See [`Client::resources`].
#[derive(Debug)]
pub struct ResourcesBuilder<'c> {
    client: &'c Client,
}

impl ResourcesBuilder<'_> {
    /// Sends; resource name → URL.
    pub async fn send(self) -> Result<BTreeMap<String, String>, ClientError> {
        self.client.json(Req::new(Method::GET, Target::Data(Vec::new()))).await
    }
}

/// See [`Client::limits`].
#[derive(Debug)]
pub struct LimitsBuilder<'c> {
    client: &'c Client,
}

impl LimitsBuilder<'_> {
    /// Sends; every limit by name.
    pub async fn send(self) -> Result<Limits, ClientError> {
        self.client.json(Req::data(Method::GET, ["limits"])).await
    }
}

/// See [`Client::search`].
#[derive(Debug)]
pub struct SearchBuilder<'c> {
    client: &'c Client,
    sosl: String,
}

/// The two shapes of a search answer: a bare array (old API versions) or
/// `{"searchRecords": [...]}` (newer; the cut-over version is UNCONFIRMED, both are accepted).
#[derive(Deserialize)]
#[serde(untagged)]
enum SearchAnswer<T> {
    Wrapped {
        #[serde(rename = "searchRecords")]
        search_records: Vec<T>,
    },
    Bare(Vec<T>),
}

impl SearchBuilder<'_> {
    /// The matching records as JSON (with `attributes.type`).
    pub async fn send(self) -> Result<Vec<Value>, ClientError> {
        self.send_as().await
    }

    /// [`SearchBuilder::send`], each record decoded as `T`.
    pub async fn send_as<T: DeserializeOwned>(self) -> Result<Vec<T>, ClientError> {
        if self.sosl.trim().is_empty() {
            return Err(ClientError::InvalidInput("the SOSL search is empty".to_owned()));
        }
        let req = Req::data(Method::GET, ["search"]).query("q", self.sosl);
        Ok(match self.client.json::<SearchAnswer<T>>(req).await? {
            SearchAnswer::Wrapped { search_records } => search_records,
            SearchAnswer::Bare(v) => v,
        })
    }
}
