//! The Pub/Sub API (`eventbus.v1.PubSub`, gRPC over HTTP/2) on its own port: Change Data
//! Capture for record writes and platform events.
//!
//! - `proto`: the code generated from `proto/pubsub.proto` (our transcription of the interface).
//! - `service`: the RPCs (auth metadata, GetTopic, GetSchema, Subscribe, Publish,
//!   PublishStream); `serve`: the h2c / TLS accept loop.
//!
//! The events themselves live in the event bus (`events`), which the record code feeds; the
//! control API's `/__playground/pubsub/…` is in `control::pubsub`.
//!
//! Topics: `/data/ChangeEvents` (every object), `/data/<Object>ChangeEvent`
//! (`/data/Invoice__ChangeEvent` for `Invoice__c`) and `/event/<Name>__e`.

mod serve;
mod service;

use std::time::Duration;

pub(crate) use serve::serve;
pub(crate) use service::PubSubService;

#[allow(clippy::all, missing_debug_implementations)]
pub(crate) mod proto {
    tonic::include_proto!("eventbus.v1");
}

/// Events a Subscribe stream may have outstanding; larger requests are clamped (guide,
/// "Flow Control").
pub(crate) const MAX_OUTSTANDING: i32 = 100;
/// A stream with nothing requested is closed when the client has not asked for more within
/// 60 seconds (guide, "Flow Control").
pub(crate) const IDLE_CLOSE: Duration = Duration::from_secs(60);
