//! The web-server flow for the page's Authorize button and for connect links. `begin` keeps the
//! pending authorization (settings, PKCE verifier, `state`) sealed in the store and returns the
//! org's authorize URL; `GET /oauth/callback` takes it back by `state` — once, on whichever replica
//! the browser reaches — exchanges the code and stores the tokens. The redirect URI comes from
//! the configured public URL, never the `Host` header (which the client chooses, and would let it
//! send the code elsewhere). The callback needs no session (a SameSite=Strict cookie does not come
//! along on a redirect from another site): the single-use state is what ties it to the click.
//!
//! A connect link's authorization carries its `return_url`: the connection is saved (created or
//! replaced) only when the code exchange worked, and the browser goes back to `return_url` with
//! `connection` and `status` (`success` or `error`, with `error`) in its query.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use forcelink_auth::ConnectionId;
use forcelink_auth::flows::web_server::{AuthorizationRequest, WebServerFlow};
use forcelink_auth::secret::PkceCodeVerifier;
use forcelink_store::{AuditAction, ConnectionSpec, Method, PutMode, PutOutcome};
use serde_json::json;
use url::Url;

use crate::notify::{self, Event};
use crate::page::message;
use crate::state::{BrokerState, PendingAuthorization};

/// Scopes the web-server flow asks for when the connection names none.
pub(crate) const DEFAULT_WEB_SCOPE: &str = "api refresh_token";

/// Where the org sends the browser back: the configured public URL's `/oauth/callback`.
pub(crate) fn redirect_uri(state: &BrokerState) -> Result<Url, String> {
    match state.public_url() {
        Some(base) => base.join("/oauth/callback").map_err(|e| e.to_string()),
        None => Err("the broker has no public URL; start it with --public-url".to_owned()),
    }
}

fn flow_for(state: &BrokerState, name: &str, spec: &ConnectionSpec, redirect: Url) -> Result<WebServerFlow, String> {
    let connection = spec.resolve(name).map_err(|e| e.0)?;
    if connection.method() != Method::Web {
        return Err(format!("{name} signs in with {}, not the web-server flow.", connection.method()));
    }
    let app = match connection.app_credentials(state.secrets()) {
        Ok(Some(app)) => app,
        Ok(None) => return Err("the connection has no client id".to_owned()),
        Err(e) => return Err(e.0),
    };
    let scope = connection.auth.scope().unwrap_or(DEFAULT_WEB_SCOPE).to_owned();
    WebServerFlow::new(state.transport().clone(), connection.endpoints(), app, redirect)
        .map(|f| f.with_scope(scope))
        .map_err(|e| e.to_string())
}

/// Starts the web-server flow for connection `name` with `spec`; the authorize URL to send the
/// browser to.
pub(crate) async fn begin(
    state: &BrokerState,
    name: &str,
    spec: ConnectionSpec,
    actor: &str,
    return_url: Option<String>,
) -> Result<String, String> {
    let redirect = redirect_uri(state)?;
    let flow = flow_for(state, name, &spec, redirect)?;
    let request = flow.authorization_request();
    let pending = PendingAuthorization {
        connection: name.to_owned(),
        spec,
        url: request.url.to_string(),
        state: request.state.clone(),
        redirect_uri: request.redirect_uri.to_string(),
        verifier: request.verifier().secret().to_owned(),
        actor: actor.to_owned(),
        return_url,
    };
    state.add_pending(&pending).await.map_err(|e| e.message)?;
    Ok(request.url.to_string())
}

fn flow_client_id(state: &BrokerState, name: &str, spec: &ConnectionSpec) -> Option<String> {
    let connection = spec.resolve(name).ok()?;
    connection.app_credentials(state.secrets()).ok().flatten().map(|a| a.client_id)
}

/// Counts the approval a sign-in with a refresh token made (Salesforce keeps five per user and
/// app, and a sixth revokes the oldest); how many this user and app hold now.
async fn record_approval(
    state: &BrokerState,
    name: &str,
    client_id: &Option<String>,
    set: &forcelink_auth::TokenSet,
) -> Option<u32> {
    let (Some(client_id), Some(user), Some(_)) = (client_id, set.user_id(), &set.refresh_token) else { return None };
    let budget = forcelink_auth::approvals::ApprovalBudget::new(state.store().clone());
    let approval = forcelink_auth::store::Approval {
        user: user.to_owned(),
        client_id: client_id.clone(),
        connection: ConnectionId::new(name),
        approved_at: state.now(),
    };
    if let Err(e) = budget.record(approval).await {
        tracing::warn!(connection = name, "counting the approval: {e}");
        return None;
    }
    state.store().approvals(user, client_id).await.ok().map(|l| u32::try_from(l.len()).unwrap_or(u32::MAX))
}

/// `return_url` with the outcome in its query.
fn back_to(return_url: &str, connection: &str, error: Option<&str>) -> String {
    let Ok(mut url) = Url::parse(return_url) else { return return_url.to_owned() };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("connection", connection);
        match error {
            None => q.append_pair("status", "success"),
            Some(e) => q.append_pair("status", "error").append_pair("error", e),
        };
    }
    url.to_string()
}

/// `GET /oauth/callback?code=…&state=…`.
pub(crate) async fn callback(
    State(state): State<BrokerState>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let page_fail = |text: &str| message(StatusCode::BAD_REQUEST, "Authorization failed", text, None);
    let pending = match q.get("state") {
        Some(s) => match state.take_pending(s).await {
            Ok(p) => p,
            Err(e) => return crate::page::store_down(&e.message),
        },
        None => None,
    };
    let Some(pending) = pending else {
        return page_fail("This authorization is unknown or expired (each can be used once). Start again.");
    };
    let name = pending.connection.clone();
    let fail = |text: &str, code: &str| match &pending.return_url {
        Some(r) => {
            let to = back_to(r, &name, Some(code));
            message(StatusCode::OK, "Authorization failed", text, Some(&to))
        }
        None => page_fail(text),
    };
    let (Ok(url), Ok(redirect)) = (Url::parse(&pending.url), Url::parse(&pending.redirect_uri)) else {
        return fail("The saved authorization is damaged; start again.", "invalid_state");
    };
    let request = AuthorizationRequest::resume(
        url,
        pending.state.clone(),
        redirect.clone(),
        PkceCodeVerifier::new(pending.verifier.clone()),
    );
    let mut callback = redirect.clone();
    callback.set_query(uri.query());
    let code = match request.code_from_callback(&callback) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string(), "access_denied"),
    };
    let flow = match flow_for(&state, &name, &pending.spec, redirect) {
        Ok(f) => f,
        Err(e) => return fail(&e, "invalid_connection"),
    };
    let set = match flow.exchange(&request, &code).await {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), "token_exchange_failed"),
    };
    if pending.return_url.is_some() {
        // A connect link: the connection exists from now on, with the settings of the link.
        let outcome =
            match state.store().put_connection(&ConnectionId::new(&name), &pending.spec, PutMode::Upsert).await {
                Ok(o) => o,
                Err(e) => return fail(&format!("saving the connection: {e}"), "store_unavailable"),
            };
        let (action, kind) = match outcome {
            PutOutcome::Created => (AuditAction::ConnectionCreated, "connection.created"),
            _ => (AuditAction::ConnectionUpdated, "connection.updated"),
        };
        state.audit(&pending.actor, &name, action, Some("connect link".to_owned())).await;
        notify::emit(&state, &name, &[Event::new(kind, json!({ "via": "connect_link" }))]).await;
    }
    state.evict(&name);
    let entry = match state.entry(&name).await {
        Ok(e) => e,
        Err(e) => return fail(&e.message, "invalid_connection"),
    };
    let approvals = record_approval(&state, &name, &flow_client_id(&state, &name, &pending.spec), &set).await;
    if let Err(e) = entry.cache.adopt(set).await {
        return fail(&e.to_string(), "store_unavailable");
    }
    entry.record_ok(state.now());
    let how = if pending.return_url.is_some() { "connect link" } else { "web-server flow" };
    crate::monitor::signed_in(&state, &name, how, approvals).await;
    state.audit(&pending.actor, &name, AuditAction::Login, Some(how.to_owned())).await;
    match &pending.return_url {
        Some(r) => {
            let to = back_to(r, &name, None);
            message(StatusCode::OK, "Connected", &format!("Connection {name} is signed in."), Some(&to))
        }
        None => {
            let next = format!("/connections/{name}");
            message(StatusCode::OK, "Authorized", &format!("Connection {name} is signed in."), Some(&next))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_added_to_the_return_url_query() {
        assert_eq!(
            back_to("https://n8n.example.com/cb?x=1", "acme", None),
            "https://n8n.example.com/cb?x=1&connection=acme&status=success"
        );
        assert_eq!(
            back_to("https://n8n.example.com/cb", "acme", Some("access_denied")),
            "https://n8n.example.com/cb?connection=acme&status=error&error=access_denied"
        );
    }
}
