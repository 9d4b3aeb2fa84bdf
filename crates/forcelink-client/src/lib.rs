//! forcelink-client: Salesforce's REST API over any [`forcelink_auth::TokenProvider`]. The
//! client never sees a refresh token or a client secret: it asks the provider for a token per
//! request and reports the exact token Salesforce refused.
//!
//! Streaming a query (here against a local playground org standing in for Salesforce):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let pg = forcelink_test_support::spawn_playground().await;
//! # let instance_url = pg.instance_url().to_owned();
//! use std::sync::Arc;
//!
//! use forcelink_auth::flows::client_credentials::ClientCredentials;
//! use forcelink_auth::secret::ClientSecret;
//! use forcelink_auth::{AppCredentials, ConnectionId, Endpoints, MemoryStore, SystemClock, TokenCache, Transport};
//! use forcelink_client::{Client, UrlPolicy};
//! use futures_util::StreamExt;
//!
//! // The playground listens on loopback http; real orgs are https Salesforce hosts.
//! let policy = UrlPolicy::new().allow_any_loopback();
//! let transport = Transport::new(forcelink_auth::wire::default_http_client()?, Arc::new(SystemClock), policy.clone());
//! let app = AppCredentials::new(
//!     "3MVG9playground.forcelink.default.app",
//!     Some(ClientSecret::new("PLAYGROUNDSECRET0000000000000000000000000000000000000001")),
//! );
//! let source = ClientCredentials::new(transport, Endpoints::salesforce(&url::Url::parse(&instance_url)?), app)?;
//! let store = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
//! let tokens =
//!     TokenCache::new(ConnectionId::new("demo"), Arc::new(source), store, Arc::new(SystemClock), Default::default());
//! let client = Client::builder(Arc::new(tokens)).url_policy(policy).build()?;
//!
//! let mut users = client.query("SELECT Id, Username FROM User").stream();
//! let mut count = 0;
//! while let Some(record) = users.next().await {
//!     let record = record?;
//!     assert!(record["Username"].is_string());
//!     count += 1;
//! }
//! assert!(count > 0);
//! # pg.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Every resource has one shape: a handler on [`Client`] → a builder → `.send().await`.
//!
//! - [`client`]: [`Client`] and its builder; the request path (token, URL policy, retries with
//!   backoff, one renewal on `401 INVALID_SESSION_ID`, gzip, `Sforce-Limit-Info`); raw requests.
//! - [`sobjects`]: describeGlobal, describe (cached, revalidated), create, retrieve, update,
//!   upsert, delete; [`describe`]: what describe answers hold.
//! - [`query`]: `query` / `queryAll` pages and the lazy [`query::RecordStream`].
//! - [`resources`]: versions, resources, limits, SOSL search.
//! - [`broker`]: [`BrokerTokens`], tokens from a forcelink broker, with rejected tokens reported.
//! - [`bulk`]: Bulk API 2.0 ingest and query jobs, uploads and results streamed in constant memory.
//! - [`composite`]: composite and sObject collections (chunked by 200).
//! - [`soql`]: a SOQL builder that quotes literals and checks identifiers.
//! - [`actions`]: user administration and document upload, typed JSON in and out.
//! - [`pubsub`]: the Pub/Sub API (gRPC): change events and platform events as a stream of
//!   decoded events, with flow control, keep-alive watchdog, resubscription and checkpoints.
//! - [`openapi`]: an OpenAPI 3.1 document for chosen sObjects, served through the broker proxy.
//! - [`error`], [`limits`], [`types`], [`version`]: errors as data, limit info, checked names and
//!   ids, API versions. Retries follow [`Backoff`] (from forcelink-auth).

#![warn(missing_docs)]

pub mod actions;
pub mod broker;
pub mod bulk;
pub mod client;
pub mod composite;
pub mod describe;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod openapi;
pub mod pubsub;
pub mod query;
pub mod resources;
pub mod sobjects;
pub mod soql;
pub mod types;
mod upload;
pub mod version;

pub use broker::BrokerTokens;
pub use bulk::{Bulk, BulkError, IngestJob, JobInfo, JobKind, JobState, Operation, ResultSet};
pub use client::{Client, ClientBuilder, ClientStats, RawResponse};
pub use describe::{DescribeGlobal, FieldDescribe, SObjectDescribe};
pub use error::{ApiError, BodyKind, ClientError};
pub use limits::{LimitInfo, Usage};
pub use query::{Page, PageBytes, PageStream, RecordStream};
pub use sobjects::{Created, SaveResult, Upserted};
pub use types::{FieldName, RecordId, SObjectType};
pub use version::{ApiVersion, DEFAULT_API_VERSION};

pub use forcelink_auth::{Action, Backoff, Clock, Jitter, TokenProvider, UrlPolicy};
