//! forcelink-store: `TokenStore` and `ConnectionStore` adapters (memory, SQLite, PostgreSQL).
//!
//! Not built yet: this crate is reserved so the workspace has its final shape. It has no
//! public API, and nothing in the workspace depends on it.
