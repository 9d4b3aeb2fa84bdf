//! Integration tests of the playground over real HTTP, with a plain HTTP client.

// Helpers outside #[test] functions unwrap too: a failed step should fail the test loudly.
#![allow(clippy::unwrap_used)]

mod common;

mod approvals;
mod authorize;
mod bulk;
mod cdc;
mod composite;
mod conformance;
mod control;
mod data_conformance;
mod device;
mod fuzz_findings;
mod grants;
mod identity;
mod pagination;
mod peers;
mod pubsub;
mod refresh;
mod rest;
mod soap;
mod soql;
mod soql_joins;
mod tls;
mod useradmin;
