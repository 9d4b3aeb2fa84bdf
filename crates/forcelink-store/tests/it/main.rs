//! forcelink-store tests: one behaviour suite run against every backend (memory, SQLite,
//! PostgreSQL), encryption at rest, opening with the right key and migrations, and single
//! flight across store instances.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod at_rest;
mod backends;
mod opening;
mod processes;
mod rotation;
mod suite;
