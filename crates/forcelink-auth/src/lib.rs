//! forcelink-auth: every Salesforce OAuth 2.0 flow on the client side, and a token cache that
//! renews exactly once.
//!
//! A JWT-bearer token (here from a local playground org standing in for Salesforce):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let pg = forcelink_test_support::spawn_playground().await;
//! # let (login_url, key_pem) = (pg.login_url().to_owned(), pg.jwt_private_key_pem());
//! use std::sync::Arc;
//!
//! use forcelink_auth::flows::jwt_bearer::JwtBearer;
//! use forcelink_auth::secret::PrivateKeyPem;
//! use forcelink_auth::{Endpoints, SystemClock, TokenSource, Transport, UrlPolicy};
//!
//! // The playground listens on loopback http; real orgs are https Salesforce hosts.
//! let policy = UrlPolicy::new().allow_any_loopback();
//! let transport = Transport::new(forcelink_auth::wire::default_http_client()?, Arc::new(SystemClock), policy);
//! let endpoints = Endpoints::salesforce(&url::Url::parse(&login_url)?);
//! let key = PrivateKeyPem::new(key_pem);
//! let consumer_key = "3MVG9playground.forcelink.default.app";
//! let user = "admin@playground.forcelink.dev";
//! let source = JwtBearer::new(transport, endpoints, consumer_key, user, &key, vec![login_url.clone()])?;
//! let tokens = source.fetch(None).await?;
//! assert!(tokens.refresh_token.is_none(), "the JWT bearer flow never returns a refresh token");
//! # pg.shutdown().await;
//! # Ok(())
//! # }
//! ```
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

#![warn(missing_docs)]

pub mod approvals;
pub mod backoff;
pub mod body;
pub mod cache;
pub mod clock;
pub mod endpoint;
pub mod error;
pub mod flows;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
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
