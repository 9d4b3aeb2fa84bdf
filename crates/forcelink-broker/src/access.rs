//! Who may call what. Every route in [`crate::routes`] declares an [`Access`]; the router wraps
//! each route in [`guard`], which authenticates and authorizes from the request head alone —
//! before any body is read — and leaves a [`Caller`] (API key) or a [`WebUser`] (page session)
//! in the request's extensions for the handler.
//!
//! API keys: `Authorization: Bearer flk_<id>_<secret>`, verified against the stored hash, then
//! checked for the scope (`token`, `proxy`, `actions`, `admin`) and, when the path names one,
//! the connection. A missing or unknown key is 401, a key without the right scope or connection
//! 403; both as JSON, and both counted for the audit log ([`crate::audit`]).
//!
//! A read-only key ([`ApiKeyRecord::read_only`]) reads only: `GET` and `HEAD`, and the MCP server
//! (whose tools refuse writes themselves); never a token, which writes as well as it reads.

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use forcelink_store::{ApiKeyRecord, Scope};

use crate::error::ErrorResponse;
use crate::page::store_down;
use crate::state::{BrokerState, Session};

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone (health, the OpenAPI document).
    Public,
    /// An API key with this scope: on the `{name}` connection when the path has one, else
    /// anywhere (the handler checks a connection named in the body).
    Key(Scope),
    /// An API key for every connection (`*`) with this scope: metrics and API-key management.
    KeyAllConnections(Scope),
    /// A signed-in page session (otherwise: a redirect to the sign-in page).
    Session,
    /// A public page (sign-in, the OAuth callback): the handler checks what it needs.
    Page,
}

impl Access {
    /// The scope an API key needs, if any.
    pub(crate) fn scope(self) -> Option<Scope> {
        match self {
            Access::Key(s) | Access::KeyAllConnections(s) => Some(s),
            _ => None,
        }
    }
}

/// An authenticated API-key caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub key: ApiKeyRecord,
}

impl Caller {
    /// `api-key:<id>`, for the audit log.
    pub(crate) fn actor(&self) -> String {
        format!("api-key:{}", self.key.id)
    }

    /// Checks `scope` on a connection named in a request body (the path named none).
    pub(crate) fn require(&self, state: &BrokerState, scope: Scope, connection: &str) -> Result<(), ErrorResponse> {
        if self.key.allows(connection, scope) {
            return Ok(());
        }
        refuse_forbidden(state, &self.key.id, scope, Some(connection))
    }
}

/// A signed-in page user.
#[derive(Debug, Clone)]
pub(crate) struct WebUser {
    pub session: Session,
    /// The session cookie's value (to end it on sign-out).
    pub session_id: String,
    pub key: ApiKeyRecord,
}

impl WebUser {
    /// `web:api-key:<id>`, for the audit log.
    pub(crate) fn actor(&self) -> String {
        format!("web:api-key:{}", self.key.id)
    }
}

/// The bearer value of the `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn refuse_forbidden<T>(
    state: &BrokerState,
    key_id: &str,
    scope: Scope,
    connection: Option<&str>,
) -> Result<T, ErrorResponse> {
    state.metrics().forbidden.inc();
    let reason = match connection {
        Some(c) => format!("forbidden: {scope} on {c:?}"),
        None => format!("forbidden: {scope}"),
    };
    state.audit_refusal(&format!("api-key:{key_id}"), &reason);
    Err(ErrorResponse::forbidden(scope.as_str(), connection))
}

/// Who presented a key that was refused, for the audit log: the id of a well-formed key names it
/// (never the secret); anything else is one "unknown" group, so a flood of junk cannot grow the log.
pub(crate) fn refused_actor(presented: &str) -> String {
    match forcelink_store::apikey::parse(presented) {
        Some((id, _)) => format!("api-key:{id}"),
        None => "unknown".to_owned(),
    }
}

/// The caller of `access`, from the request head. `connection` is the path's `{name}`.
pub(crate) async fn authenticate(
    state: &BrokerState,
    headers: &HeaderMap,
    access: Access,
    connection: Option<&str>,
) -> Result<Caller, ErrorResponse> {
    let Some(scope) = access.scope() else {
        return Err(ErrorResponse::unauthorized());
    };
    let Some(presented) = bearer(headers) else {
        state.metrics().unauthorized.inc();
        state.audit_refusal("anonymous", "unauthorized: no key");
        return Err(ErrorResponse::unauthorized());
    };
    let Some(key) = state.verify_key(presented).await? else {
        state.metrics().unauthorized.inc();
        state.audit_refusal(&refused_actor(presented), "unauthorized: unknown, malformed or revoked key");
        return Err(ErrorResponse::unauthorized());
    };
    let allowed = match access {
        Access::KeyAllConnections(_) => key.all_connections() && key.capabilities.contains(scope),
        _ => match connection {
            Some(c) => key.allows(c, scope),
            None => key.capabilities.contains(scope),
        },
    };
    if !allowed {
        let connection = match access {
            Access::KeyAllConnections(_) => Some("*"),
            _ => connection,
        };
        return refuse_forbidden(state, &key.id, scope, connection);
    }
    Ok(Caller { key })
}

/// What [`guard`] checks for one route.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub state: BrokerState,
    pub access: Access,
    /// The route takes a JSON body: another declared content type is refused with 415.
    pub json_body: bool,
}

/// The middleware every route runs: checks `access` from the request head and stores the
/// [`Caller`] or [`WebUser`] in the request's extensions; refuses otherwise. Never reads the body.
pub(crate) async fn guard(
    State(Guard { state, access, json_body }): State<Guard>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match access {
        Access::Public | Access::Page => {}
        Access::Session => match signed_in(&state, &parts.headers).await {
            Ok(user) => {
                parts.extensions.insert(user);
            }
            Err(response) => return response,
        },
        Access::Key(_) | Access::KeyAllConnections(_) => {
            let params = RawPathParams::from_request_parts(&mut parts, &state).await.ok();
            let name = params.as_ref().and_then(|p| p.iter().find_map(|(k, v)| (k == "name").then_some(v)));
            match authenticate(&state, &parts.headers, access, name).await {
                Ok(caller) if caller.key.read_only && !read_only_allows(access, &parts.method) => {
                    state.metrics().forbidden.inc();
                    state.audit_refusal(
                        &caller.actor(),
                        &format!("read-only key: {} {}", parts.method, parts.uri.path()),
                    );
                    let what = match access.scope() {
                        Some(Scope::Token) => "get tokens (a token can write)".to_owned(),
                        _ => format!("{} here", parts.method),
                    };
                    return ErrorResponse::read_only(&what).into_response();
                }
                Ok(caller) => {
                    parts.extensions.insert(caller);
                }
                Err(e) => return e.into_response(),
            }
        }
    }
    if json_body
        && let Some(kind) = parts.headers.get(axum::http::header::CONTENT_TYPE)
        && !kind.to_str().is_ok_and(|k| k.trim_start().to_ascii_lowercase().starts_with("application/json"))
    {
        return ErrorResponse::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Whether a read-only key may make this call (see the module docs).
fn read_only_allows(access: Access, method: &axum::http::Method) -> bool {
    match access.scope() {
        Some(Scope::Mcp) => true,
        Some(Scope::Token) => false,
        _ => *method == axum::http::Method::GET || *method == axum::http::Method::HEAD,
    }
}

/// The page's session cookie.
pub(crate) const SESSION_COOKIE: &str = "forcelink_session";

/// The signed-in session and its key, or the answer to send instead (the sign-in page). Run by
/// [`guard`] for every [`Access::Session`] route.
pub(crate) async fn signed_in(state: &BrokerState, headers: &HeaderMap) -> Result<WebUser, Response> {
    let to_login = || Redirect::to("/login").into_response();
    let jar = CookieJar::from_headers(headers);
    let Some(id) = jar.get(SESSION_COOKIE).map(Cookie::value) else { return Err(to_login()) };
    let session = match state.session(id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(to_login()),
        Err(e) => return Err(store_down(&e.message)),
    };
    // The key may have been revoked since the sign-in.
    match state.store().api_key(&session.key_id).await {
        Ok(Some(key)) if key.revoked_at.is_none() && has_capability(&key, Scope::Admin) && !key.read_only => {
            Ok(WebUser { session, session_id: id.to_owned(), key })
        }
        Ok(_) => {
            state.end_session(id).await;
            Err(to_login())
        }
        Err(e) => Err(store_down(&e)),
    }
}

/// Whether the key holds `capability` for some connection (for endpoints not about one).
pub(crate) fn has_capability(key: &ApiKeyRecord, capability: Scope) -> bool {
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
