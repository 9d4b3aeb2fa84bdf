//! forcelink-broker: the HTTP API, proxy, actions and the web page behind `forcelink serve`.
//!
//! Not built yet: this crate is reserved so the workspace has its final shape. It has no
//! public API, and nothing in the workspace depends on it.
