//! API keys on every endpoint but health: `Authorization: Bearer flk_<id>_<secret>`, verified
//! against its stored hash, then checked for the capability (`token`, `proxy`, `actions`,
//! `admin`) and the connection. A missing or unknown key is 401, a key without the right scope
//! or connection 403; both as JSON.

use std::sync::atomic::Ordering;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use forcelink_store::{ApiKeyRecord, Scope};

use crate::error::ApiError;
use crate::state::BrokerState;

/// What the caller is.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKeyRecord,
}

impl Caller {
    /// `api-key:<id>`, for the audit log.
    pub fn actor(&self) -> String {
        format!("api-key:{}", self.key.id)
    }
}

/// The bearer value of the `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The caller, if the key allows `capability` (on `connection`, when given).
pub async fn authorize(
    state: &BrokerState,
    headers: &HeaderMap,
    capability: Scope,
    connection: Option<&str>,
) -> Result<Caller, ApiError> {
    let Some(presented) = bearer(headers) else {
        state.metrics().unauthorized.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::unauthorized());
    };
    let Some(key) = state.verify_key(presented).await? else {
        state.metrics().unauthorized.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::unauthorized());
    };
    let allowed = match connection {
        Some(c) => key.allows(c, capability),
        None => has_capability(&key, capability),
    };
    if !allowed {
        state.metrics().forbidden.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::forbidden(capability.as_str(), connection));
    }
    Ok(Caller { key })
}

/// Whether the key holds `capability` for some connection (for endpoints not about one).
pub fn has_capability(key: &ApiKeyRecord, capability: Scope) -> bool {
    key.capabilities.contains(capability)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_values_are_read_case_insensitively_and_nothing_else_is() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer flk_x_y"));
        assert_eq!(bearer(&h), Some("flk_x_y"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer  flk_x_y "));
        assert_eq!(bearer(&h), Some("flk_x_y"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic Zm9vOmJhcg=="));
        assert_eq!(bearer(&h), None);
    }
}
