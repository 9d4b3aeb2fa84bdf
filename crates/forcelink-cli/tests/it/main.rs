//! Integration tests of the `forcelink` binary: each test runs the real executable as a child
//! process and talks to it over real HTTP.
//!
//! - `process`: starting the binary, reading its output until it is ready (bounded, never by
//!   sleeping), and killing it when the test ends or panics.
//! - `playground`: `forcelink playground` start-up, the info file, `--json`, a first token.
//! - `seed`: `--seed` with a custom, a malformed and a missing seed file.
//! - `tls`: `--tls` and its CA certificate.
//! - `home`: running commands in a throwaway home (config, store, master key) and doing what a
//!   person does in the browser (sign in, consent, approve a device code).
//! - `signin`: every `forcelink login` method, `token get`, `logout`.
//! - `connections`: `connection …` (with the state a broker recorded), config file and
//!   environment sources, `doctor`, `keygen`, several processes renewing one token.
//! - `records`: the data commands (query, search, sobject, limits, user, document, generate).
//! - `events`: `events subscribe|publish|topics` against the playground's Pub/Sub API.
//! - `bulk`: `bulk import|upsert|delete|export|status|results|abort`, jobs resumed by id.
//! - `serve`: `forcelink serve` (`--playground`, SIGTERM, `--health-interval`) and `forcelink apikey`.
//! - `broker`, `tinyhttp`: `forcelink serve` as a child process (ready, API calls, SIGKILL); a
//!   webhook receiver and a round-robin proxy on 127.0.0.1, one request per connection.
//! - `keepalive`: webhook deliveries pending when the broker is SIGKILLed arrive after a restart.
//! - `relay`: `forcelink subscription …` and event subscriptions across a SIGKILLed broker.
//! - `replicas`: three `forcelink serve` on one PostgreSQL schema behind a round-robin proxy:
//!   sign-in, Authorize, connect links, revocation, background checks once per interval, a
//!   killed lease holder.

mod broker;
mod home;
mod process;
mod tinyhttp;

mod bulk;
mod connections;
mod data;
mod events;
mod keepalive;
mod playground;
mod records;
mod relay;
mod replicas;
mod seed;
mod serve;
mod signin;
mod tls;
