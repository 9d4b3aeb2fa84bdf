//! Integration tests of the playground over real HTTP, with a plain HTTP client.

mod common;

mod approvals;
mod authorize;
mod conformance;
mod control;
mod device;
mod grants;
mod identity;
mod refresh;
mod tls;
