//! Which host answered a request, and the bearer token it carried. Both hosts share one router;
//! Salesforce behaves differently on the login host and on My Domain (client credentials and
//! API calls only on My Domain), so handlers look at [`Host`].

use axum::http::{HeaderMap, header};

/// Which of the two hosts answered: the login host (like `login.salesforce.com`) or the
/// instance / My Domain host (like `acme.my.salesforce.com`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKind {
    Login,
    Instance,
}

/// Per-host context, added to each host's router.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(crate) kind: HostKind,
    pub(crate) base_url: String,
}

/// The bearer token of an API or identity request: `Authorization: Bearer …` or `OAuth …`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")).then(|| token.trim())
}
