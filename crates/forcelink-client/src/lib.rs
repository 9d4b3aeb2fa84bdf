//! forcelink-client: REST, Bulk API 2.0 and user-admin actions over any `TokenSource`.
//!
//! Not built yet: this crate is reserved so the workspace has its final shape. It has no
//! public API, and nothing in the workspace depends on it.
