//! forcelink-auth: Salesforce OAuth 2.0 flows, `TokenSource`s, the renewing `TokenCache`,
//! secret newtypes and the `TokenStore` port.
//!
//! Not built yet: this crate is reserved so the workspace has its final shape. It has no
//! public API, and nothing in the workspace depends on it.
