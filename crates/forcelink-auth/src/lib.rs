//! forcelink-auth: every Salesforce OAuth 2.0 flow on the client side, and a token cache that
//! renews exactly once.
//!
//! - [`source`]: the [`TokenSource`] (gets tokens) and [`TokenProvider`] (hands them out) seams.
//! - [`flows`]: one source or flow per auth method — static token, client credentials, JWT
//!   bearer, web server + PKCE (with a loopback redirect listener), refresh token, device,
//!   username-password, user-agent, asset token exchange.
//! - [`identity`]: revoke, introspect, userinfo, identity URL.
//! - [`cache`]: [`TokenCache`], single flight per connection in and across processes.
//! - [`store`]: the [`TokenStore`] port (compare-and-swap, renewal lease, approvals) and
//!   [`MemoryStore`].
//! - [`approvals`]: the five-approvals-per-user-and-app budget.
//! - [`backoff`]: [`Backoff`], the one retry and polling schedule (jitter, cap, `Retry-After`)
//!   that waits on the injected clock.
//! - [`error`]: errors as data, with a fix for each known Salesforce failure.
//! - [`endpoint`]: the URL policy (tokens only to https, or http on loopback) and endpoints.
//! - [`body`]: unusable bodies ([`body::BodyKind`]: HTML, empty, truncated…) and redacted
//!   excerpts of them (session ids, bearer values, secrets), shared with forcelink-client.
//! - [`wire`]: HTTP transport and token-response decoding (signature, lifetimes).
//! - [`keys`]: RSA key and self-signed certificate for the JWT flow.
//! - [`secret`], [`clock`], [`token`]: secret newtypes, injected time, token sets.

pub mod approvals;
pub mod backoff;
pub mod body;
pub mod cache;
pub mod clock;
pub mod endpoint;
pub mod error;
pub mod flows;
pub mod identity;
pub mod keys;
pub mod secret;
pub mod source;
pub mod store;
pub mod token;
pub mod wire;

pub use backoff::{Backoff, GiveUp, Jitter, Retries};
pub use cache::{CacheConfig, CacheStats, TokenCache};
pub use clock::{Clock, ManualClock, SystemClock};
pub use endpoint::{DEFAULT_API_VERSION, Endpoints, UrlPolicy};
pub use error::{Action, AuthError, OAuthError, OAuthErrorKind};
pub use source::{AppCredentials, AuthMethod, ClientAuth, TokenProvider, TokenSource};
pub use store::{ConnectionId, MemoryStore, TokenStore};
pub use token::{Token, TokenSet};
pub use wire::Transport;
