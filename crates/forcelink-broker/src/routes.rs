//! The route table: every route with its method, path, access rule and summary next to its
//! handler. The router (each route wrapped in [`crate::access::guard`] for its [`Access`]) and
//! the OpenAPI document are both built from it, so neither the document nor the checks can
//! drift from what is served.

use axum::Router;
use axum::middleware;
use axum::routing::{MethodRouter, any, delete, get, post, put};
use forcelink_store::Scope;

use crate::access::{Access, Caller, Guard};

use crate::state::BrokerState;
use crate::{actions, api, keys, metrics, openapi, proxy, web};

/// What the OpenAPI document says about a route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// `GET`, `POST`, … or `ANY`.
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Part of the JSON API (documented), or of the web page (not documented).
    pub api: bool,
    /// A JSON request body is expected.
    pub body: bool,
}

const fn doc(method: &'static str, path: &'static str, access: Access, body: bool, summary: &'static str) -> RouteDoc {
    RouteDoc { method, path, summary, access, api: true, body }
}

const fn page(method: &'static str, path: &'static str, access: Access, summary: &'static str) -> RouteDoc {
    RouteDoc { method, path, summary, access, api: false, body: false }
}

const PUBLIC: Access = Access::Public;
const ADMIN: Access = Access::Key(Scope::Admin);
const SESSION: Access = Access::Session;
const KEYS: Access = Access::KeyAllConnections(Scope::Admin);
const PAGE: Access = Access::Page;

fn table() -> Vec<(RouteDoc, MethodRouter<BrokerState>)> {
    vec![
        (doc("GET", "/healthz", PUBLIC, false, "The process answers"), get(api::healthz)),
        (doc("GET", "/readyz", PUBLIC, false, "The process and its store answer"), get(api::readyz)),
        (
            doc("GET", "/metrics", Access::KeyAllConnections(Scope::Admin), false, "Prometheus metrics"),
            get(metrics_handler),
        ),
        (doc("GET", "/v1/openapi.json", PUBLIC, false, "This document"), get(openapi::handler)),
        (doc("GET", "/v1/connections", ADMIN, false, "List connections"), get(api::list_connections)),
        (doc("POST", "/v1/connections", ADMIN, true, "Create a connection"), post(api::create_connection)),
        (
            doc("GET", "/v1/connections/{name}", ADMIN, false, "Show a connection (secrets as [stored])"),
            get(api::get_connection),
        ),
        (
            doc("PUT", "/v1/connections/{name}", ADMIN, true, "Replace a connection's settings"),
            put(api::replace_connection),
        ),
        (
            doc("DELETE", "/v1/connections/{name}", ADMIN, false, "Revoke the tokens and delete a connection"),
            delete(api::delete_connection),
        ),
        (
            doc("POST", "/v1/connections/{name}/test", ADMIN, false, "Get a token and call the REST API"),
            post(api::test_connection),
        ),
        (
            doc(
                "GET",
                "/v1/connections/{name}/token",
                Access::Key(Scope::Token),
                false,
                "A valid access token (audited)",
            ),
            get(api::get_token),
        ),
        (
            doc(
                "ANY",
                "/v1/connections/{name}/sf/{path}",
                Access::Key(Scope::Proxy),
                false,
                "Proxy to {instance_url}/{path} (services/… only) with the connection's token",
            ),
            any(proxy::proxy),
        ),
        (
            doc("POST", "/v1/connections/{name}/actions/{action}", Access::Key(Scope::Actions), true, "Run an action"),
            post(actions::run_action),
        ),
        (doc("GET", "/v1/api-keys", KEYS, false, "List API keys (no secrets)"), get(keys::list_keys)),
        (
            doc("POST", "/v1/api-keys", KEYS, true, "Create an API key (its text is in this answer only)"),
            post(keys::create_key),
        ),
        (doc("DELETE", "/v1/api-keys/{id}", KEYS, false, "Revoke an API key"), delete(keys::revoke_key)),
        (page("GET", "/", SESSION, "Connections"), get(web::index)),
        (page("GET", "/login", PAGE, "Sign-in page"), get(web::login_page)),
        (page("POST", "/login", PAGE, "Sign in with an admin key"), post(web::login)),
        (page("POST", "/logout", SESSION, "Sign out"), post(web::logout)),
        (page("GET", "/connections/new", SESSION, "New connection form"), get(web::new_page)),
        (page("POST", "/connections", SESSION, "Create a connection"), post(web::create)),
        (page("GET", "/connections/{name}", SESSION, "Connection detail"), get(web::detail)),
        (page("POST", "/connections/{name}/test", SESSION, "Test a connection"), post(web::test)),
        (page("POST", "/connections/{name}/delete", SESSION, "Delete a connection"), post(web::delete)),
        (page("POST", "/connections/{name}/authorize", SESSION, "Start the web-server flow"), post(web::authorize)),
        (page("GET", "/keys", SESSION, "API keys"), get(web::keys_page)),
        (page("POST", "/keys", SESSION, "Create an API key"), post(web::keys_create)),
        (page("POST", "/keys/{id}/revoke", SESSION, "Revoke an API key"), post(web::keys_revoke)),
        (page("GET", "/oauth/callback", PAGE, "The web-server flow's redirect"), get(web::callback)),
    ]
}

/// Every route's documentation.
pub fn docs() -> Vec<RouteDoc> {
    table().into_iter().map(|(d, _)| d).collect()
}

/// The router (without state, limits and middleware: see [`crate::router`]).
/// Each route runs [`crate::access::guard`] for its access rule before its handler (and before
/// its body is read).
pub fn build(state: &BrokerState) -> Router<BrokerState> {
    table().into_iter().fold(Router::new(), |router, (doc, handler)| {
        // axum writes a catch-all segment as `{*path}`; the document shows `{path}`.
        let path = doc.path.replace("{path}", "{*path}");
        let guard = Guard { state: state.clone(), access: doc.access, json_body: doc.api && doc.body };
        let guard = middleware::from_fn_with_state(guard, crate::access::guard);
        // An `ANY` route is all fallback, which `route_layer` does not wrap; `layer` does.
        let guarded = if doc.method == "ANY" { handler.layer(guard) } else { handler.route_layer(guard) };
        router.route(&path, guarded)
    })
}

async fn metrics_handler(
    axum::extract::State(state): axum::extract::State<BrokerState>,
    _caller: axum::Extension<Caller>,
) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render(&state))
}
