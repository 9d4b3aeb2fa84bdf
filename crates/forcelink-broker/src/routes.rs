//! The route table: every route with its method, path, scope and summary next to its handler.
//! The router and the OpenAPI document are both built from it, so the document cannot drift
//! from what is served.

use axum::Router;
use axum::routing::{MethodRouter, any, delete, get, post, put};
use forcelink_store::Scope;

use crate::state::BrokerState;
use crate::{actions, api, metrics, openapi, proxy, web};

/// What the OpenAPI document says about a route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// `GET`, `POST`, … or `ANY`.
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// The API-key capability it needs; `None` for public routes.
    pub scope: Option<&'static str>,
    /// Part of the JSON API (documented), or of the web page (not documented).
    pub api: bool,
    /// A JSON request body is expected.
    pub body: bool,
}

const fn doc(
    method: &'static str,
    path: &'static str,
    scope: Option<&'static str>,
    body: bool,
    summary: &'static str,
) -> RouteDoc {
    RouteDoc { method, path, summary, scope, api: true, body }
}

const fn page(method: &'static str, path: &'static str, summary: &'static str) -> RouteDoc {
    RouteDoc { method, path, summary, scope: None, api: false, body: false }
}

fn table() -> Vec<(RouteDoc, MethodRouter<BrokerState>)> {
    vec![
        (doc("GET", "/healthz", None, false, "The process answers"), get(api::healthz)),
        (doc("GET", "/readyz", None, false, "The process and its store answer"), get(api::readyz)),
        (doc("GET", "/metrics", Some("admin"), false, "Prometheus metrics"), get(metrics_handler)),
        (doc("GET", "/v1/openapi.json", None, false, "This document"), get(openapi::handler)),
        (doc("GET", "/v1/connections", Some("admin"), false, "List connections"), get(api::list_connections)),
        (doc("POST", "/v1/connections", Some("admin"), true, "Create a connection"), post(api::create_connection)),
        (
            doc("GET", "/v1/connections/{name}", Some("admin"), false, "Show a connection (secrets as [stored])"),
            get(api::get_connection),
        ),
        (
            doc("PUT", "/v1/connections/{name}", Some("admin"), true, "Replace a connection's settings"),
            put(api::replace_connection),
        ),
        (
            doc("DELETE", "/v1/connections/{name}", Some("admin"), false, "Revoke the tokens and delete a connection"),
            delete(api::delete_connection),
        ),
        (
            doc("POST", "/v1/connections/{name}/test", Some("admin"), false, "Get a token and call the REST API"),
            post(api::test_connection),
        ),
        (
            doc("GET", "/v1/connections/{name}/token", Some("token"), false, "A valid access token (audited)"),
            get(api::get_token),
        ),
        (
            doc(
                "ANY",
                "/v1/connections/{name}/sf/{path}",
                Some("proxy"),
                false,
                "Proxy to {instance_url}/{path} (services/… only) with the connection's token",
            ),
            any(proxy::proxy),
        ),
        (
            doc("POST", "/v1/connections/{name}/actions/{action}", Some("actions"), true, "Run an action"),
            post(actions::run_action),
        ),
        (page("GET", "/", "Connections"), get(web::index)),
        (page("GET", "/login", "Sign-in page"), get(web::login_page)),
        (page("POST", "/login", "Sign in with an admin key"), post(web::login)),
        (page("POST", "/logout", "Sign out"), post(web::logout)),
        (page("GET", "/connections/new", "New connection form"), get(web::new_page)),
        (page("POST", "/connections", "Create a connection"), post(web::create)),
        (page("GET", "/connections/{name}", "Connection detail"), get(web::detail)),
        (page("POST", "/connections/{name}/test", "Test a connection"), post(web::test)),
        (page("POST", "/connections/{name}/delete", "Delete a connection"), post(web::delete)),
        (page("GET", "/connections/{name}/authorize", "Start the web-server flow"), get(web::authorize)),
        (page("GET", "/oauth/callback", "The web-server flow's redirect"), get(web::callback)),
    ]
}

/// Every route's documentation.
pub fn docs() -> Vec<RouteDoc> {
    table().into_iter().map(|(d, _)| d).collect()
}

/// The router (without state, limits and middleware: see [`crate::router`]).
pub fn build() -> Router<BrokerState> {
    table().into_iter().fold(Router::new(), |router, (doc, handler)| {
        // axum writes a catch-all segment as `{*path}`; the document shows `{path}`.
        let path = doc.path.replace("{path}", "{*path}");
        router.route(&path, handler)
    })
}

async fn metrics_handler(
    axum::extract::State(state): axum::extract::State<BrokerState>,
    headers: axum::http::HeaderMap,
) -> Result<impl axum::response::IntoResponse, crate::ApiError> {
    crate::access::authorize(&state, &headers, Scope::Admin, None).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render(&state)))
}
