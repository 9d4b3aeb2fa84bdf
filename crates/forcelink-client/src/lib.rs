//! forcelink-client: Salesforce's REST API over any [`forcelink_auth::TokenProvider`]. The
//! client never sees a refresh token or a client secret: it asks the provider for a token per
//! request and reports the exact token Salesforce refused.
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

pub mod actions;
pub mod broker;
pub mod bulk;
pub mod client;
pub mod composite;
pub mod describe;
pub mod error;
pub mod limits;
pub mod openapi;
pub mod pubsub;
pub mod query;
pub mod resources;
pub mod sobjects;
pub mod soql;
pub mod types;
pub mod version;

pub use broker::BrokerTokens;
pub use bulk::{Bulk, BulkError, IngestJob, JobInfo, JobKind, JobState, Operation, ResultSet};
pub use client::{Client, ClientBuilder, ClientStats, RawResponse};
pub use describe::{DescribeGlobal, FieldDescribe, SObjectDescribe};
pub use error::{ApiError, BodyKind, ClientError};
pub use limits::{LimitInfo, Usage};
pub use query::{Page, RecordStream};
pub use sobjects::{Created, SaveResult, Upserted};
pub use types::{FieldName, RecordId, SObjectType};
pub use version::{ApiVersion, DEFAULT_API_VERSION};

pub use forcelink_auth::{Action, Backoff, Clock, Jitter, TokenProvider, UrlPolicy};
