//! forcelink-auth integration tests: every flow against the playground, the standard ones
//! against oidc-provider, and the cache's single flight, invalidation and rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod approvals;
mod cache;
mod common;
mod flows;
mod fuzz_findings;
mod oidc;
mod responses;
mod secrets;
