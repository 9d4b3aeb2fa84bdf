//! forcelink-client integration tests: every resource and action against the playground, the
//! recorded Salesforce answers replayed by a local server, retries and renewal with a manual
//! clock (no real sleeps).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod bulk;
mod common;
mod fixtures;
mod fuzz_findings;
mod openapi;
mod pubsub;
mod pubsub_tls;
mod query;
mod resources;
mod retries;
mod roundtrip;
mod soql;
