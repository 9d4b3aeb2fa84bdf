//! Integration tests of the playground over real HTTP, with a plain HTTP client.

// Helpers outside #[test] functions unwrap too: a failed step should fail the test loudly.
#![allow(clippy::unwrap_used)]

mod common;

mod approvals;
mod authorize;
mod bulk;
mod bulk_jobs;
mod cdc;
mod composite;
mod conformance;
mod control;
mod data_conformance;
mod device;
mod external_id;
mod fuzz_findings;
mod grants;
mod graph;
mod identity;
mod limits;
mod pagination;
mod peers;
mod pubsub;
mod refresh;
mod rest;
mod rules;
mod soap;
mod soql;
mod soql_joins;
mod tls;
mod useradmin;
