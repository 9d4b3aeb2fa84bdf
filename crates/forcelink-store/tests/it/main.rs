//! forcelink-store tests:
//! - `suite` + `backends`: one behaviour suite (token sets, leases, approvals, connections,
//!   audit log, API keys, checkpoints; with `suite_ops`, health, work leases, webhooks, the
//!   outbox, ephemeral records; with `suite_subscriptions`, event subscriptions and ordered
//!   outbox targets) run on memory, SQLite and PostgreSQL; single flight, claims and
//!   takes across store instances in one process.
//! - `integrity`: API-key rows cannot be planted or altered without the master key (MAC);
//!   migration signs existing rows; rotation re-signs them; a SQLite store's files are private.
//! - `at_rest`: no secret in the clear in the SQLite files or the PostgreSQL tables.
//! - `opening`: `open_store`, refusing the wrong key, schema migrations (checkpoints from v3).
//! - `tls`: `sslmode` against the local server and stand-in servers (no TLS; a test CA), and
//!   URL passwords kept out of errors.
//! - `rotation`: master key rotation and recovery from an interrupted one.
//! - `processes`: real OS processes — single flight across them, and a writer killed mid-write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod at_rest;
mod backends;
mod integrity;
mod opening;
mod processes;
mod rotation;
mod suite;
mod suite_ops;
mod suite_subscriptions;
mod tls;
