//! The route table: every route with its method, path, access rule and summary next to its
//! handler. The router (each route wrapped in [`crate::access::guard`] for its [`Access`]) and
//! the OpenAPI document are both built from it, so neither the document nor the checks can
//! drift from what is served.

use std::borrow::Cow;

use axum::Router;
use axum::middleware;
use axum::routing::{MethodRouter, any, delete, get, post, put};
use forcelink_store::Scope;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::access::{Access, Caller, Guard};

use crate::body::{self, *};
use crate::state::BrokerState;
use crate::{actions, api, keys, metrics, openapi, proxy, web};

/// A JSON body type with its schema (see [`crate::body`]).
#[derive(Debug, Clone, Copy)]
pub struct BodyType {
    /// The schema's name in the document's components.
    pub name: fn() -> Cow<'static, str>,
    /// Adds the type's schema and those it refers to.
    pub schemas: fn(&mut Vec<(String, RefOr<Schema>)>),
}

fn collect_schemas<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

impl BodyType {
    pub fn of<T: ToSchema>() -> Self {
        BodyType { name: T::name, schemas: collect_schemas::<T> }
    }
    pub fn collect(&self, out: &mut Vec<(String, RefOr<Schema>)>) {
        (self.schemas)(out)
    }
}

/// What a route answers with one status.
#[derive(Debug, Clone)]
pub enum Answer {
    /// One of these JSON bodies.
    Json(Vec<BodyType>),
    /// The JSON error, [`crate::body::ErrorBody`].
    Error,
    /// Text of this content type.
    Text(&'static str),
    /// Whatever Salesforce answered (the proxy).
    Any,
}

/// A parameter's schema.
pub type ParamSchema = fn() -> RefOr<Schema>;

/// What the OpenAPI document says about a route.
#[derive(Debug, Clone)]
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
    /// Its type.
    pub request: Option<BodyType>,
    /// Every status the route answers, with what comes with it.
    pub answers: Vec<(u16, Answer)>,
    /// Path parameters whose schema is not a plain string.
    pub path_params: Vec<(&'static str, ParamSchema)>,
    /// Optional query parameters: name, description, schema.
    pub query: Vec<(&'static str, &'static str, ParamSchema)>,
    /// A path parameter whose value picks the request body: the document shows one path per
    /// value (e.g. one per action, each with its input), as a schema cannot tie a body to a
    /// path parameter.
    pub variants: Option<(&'static str, Vec<(&'static str, BodyType)>)>,
}

fn doc(method: &'static str, path: &'static str, access: Access, summary: &'static str) -> RouteDoc {
    let path_params: Vec<(&'static str, ParamSchema)> =
        if path.contains("{name}") { vec![("name", name_schema as ParamSchema)] } else { Vec::new() };
    RouteDoc {
        method,
        path,
        summary,
        access,
        api: true,
        body: false,
        request: None,
        answers: Vec::new(),
        path_params,
        query: Vec::new(),
        variants: None,
    }
}

fn page(method: &'static str, path: &'static str, access: Access, summary: &'static str) -> RouteDoc {
    RouteDoc { api: false, path_params: Vec::new(), ..doc(method, path, access, summary) }
}

fn name_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).pattern(Some(body::NAME_PATTERN)).into()
}

impl RouteDoc {
    /// Takes a JSON body of type `T`.
    fn takes<T: ToSchema>(mut self) -> Self {
        self.body = true;
        self.request = Some(BodyType::of::<T>());
        self
    }
    /// Answers `status` with a `T`.
    fn ok<T: ToSchema>(mut self, status: u16) -> Self {
        self.answers.push((status, Answer::Json(vec![BodyType::of::<T>()])));
        self
    }
    fn answer(mut self, status: u16, answer: Answer) -> Self {
        self.answers.push((status, answer));
        self
    }
    /// Answers these statuses with the JSON error. Key routes add 401, 403 and 503 (the key
    /// store, or the time limit), routes with a body 400, 413 and 415 (by themselves).
    fn errors(mut self, statuses: &[u16]) -> Self {
        let mut all: Vec<u16> = statuses.to_vec();
        if self.access.scope().is_some() {
            all.extend([401, 403, 503]);
        }
        if self.body {
            all.extend([400, 413, 415]);
        }
        if self.path.contains('{') {
            all.push(404);
        }
        all.sort_unstable();
        all.dedup();
        for s in all {
            if !self.answers.iter().any(|(have, _)| *have == s) {
                self.answers.push((s, Answer::Error));
            }
        }
        self
    }
    fn query(mut self, name: &'static str, description: &'static str, schema: ParamSchema) -> Self {
        self.query.push((name, description, schema));
        self
    }
    fn variants(mut self, param: &'static str, bodies: Vec<(&'static str, BodyType)>) -> Self {
        self.body = true;
        self.variants = Some((param, bodies));
        self
    }
}

const PUBLIC: Access = Access::Public;
const ADMIN: Access = Access::Key(Scope::Admin);
const SESSION: Access = Access::Session;
const KEYS: Access = Access::KeyAllConnections(Scope::Admin);
const PAGE: Access = Access::Page;

fn table() -> Vec<(RouteDoc, MethodRouter<BrokerState>)> {
    let string = <String as PartialSchema>::schema as ParamSchema;
    let boolean = <bool as PartialSchema>::schema as ParamSchema;
    vec![
        (doc("GET", "/healthz", PUBLIC, "The process answers").ok::<Status>(200), get(api::healthz)),
        (
            doc("GET", "/readyz", PUBLIC, "The process and its store answer").ok::<Status>(200).ok::<Status>(503),
            get(api::readyz),
        ),
        (
            doc("GET", "/metrics", KEYS, "Prometheus metrics").answer(200, Answer::Text("text/plain")).errors(&[]),
            get(metrics_handler),
        ),
        (
            doc("GET", "/v1/openapi.json", PUBLIC, "This document")
                .answer(200, Answer::Json(vec![BodyType::of::<Document>()])),
            get(openapi::handler),
        ),
        (
            doc("GET", "/v1/connections", ADMIN, "List connections").ok::<ConnectionList>(200).errors(&[]),
            get(api::list_connections),
        ),
        (
            doc("POST", "/v1/connections", ADMIN, "Create a connection")
                .takes::<ConnectionBody>()
                .ok::<ConnectionView>(201)
                .errors(&[409]),
            post(api::create_connection),
        ),
        (
            doc("GET", "/v1/connections/{name}", ADMIN, "Show a connection (secrets as [stored])")
                .ok::<ConnectionView>(200)
                .errors(&[]),
            get(api::get_connection),
        ),
        (
            doc("PUT", "/v1/connections/{name}", ADMIN, "Replace a connection's settings (created if new)")
                .takes::<ConnectionEdit>()
                .ok::<ConnectionView>(200)
                .errors(&[422]),
            put(api::replace_connection),
        ),
        (
            doc("DELETE", "/v1/connections/{name}", ADMIN, "Revoke the tokens and delete a connection")
                .query("revoke", "Revoke the tokens at Salesforce first (default true).", boolean)
                .ok::<Deleted>(200)
                // A query that is not `revoke=true|false`.
                .errors(&[400]),
            delete(api::delete_connection),
        ),
        (
            doc("POST", "/v1/connections/{name}/test", ADMIN, "Get a token and call the REST API")
                .ok::<TestAnswer>(200)
                .answer(502, Answer::Json(vec![BodyType::of::<TestAnswer>(), BodyType::of::<ErrorBody>()]))
                .errors(&[409]),
            post(api::test_connection),
        ),
        (
            doc("GET", "/v1/connections/{name}/token", Access::Key(Scope::Token), "A valid access token (audited)")
                .query(
                    "rejected",
                    "An access token Salesforce refused, or its fingerprint: a new one is fetched instead.",
                    string,
                )
                .ok::<TokenAnswer>(200)
                .errors(&[409, 502]),
            get(api::get_token),
        ),
        (
            doc(
                "ANY",
                "/v1/connections/{name}/sf/{path}",
                Access::Key(Scope::Proxy),
                "Proxy to {instance_url}/{path} (services/… only) with the connection's token",
            )
            .answer(200, Answer::Any)
            .errors(&[400, 405, 409, 413, 502]),
            any(proxy::proxy),
        ),
        (
            doc("POST", "/v1/connections/{name}/actions/{action}", Access::Key(Scope::Actions), "Run an action")
                .variants("action", body::action_inputs())
                .ok::<ActionOutput>(200)
                .errors(&[409, 502]),
            post(actions::run_action),
        ),
        (
            doc("GET", "/v1/api-keys", KEYS, "List API keys (no secrets)").ok::<ApiKeyList>(200).errors(&[]),
            get(keys::list_keys),
        ),
        (
            doc("POST", "/v1/api-keys", KEYS, "Create an API key (its text is in this answer only)")
                .takes::<keys::NewKey>()
                .ok::<CreatedApiKey>(201)
                .errors(&[]),
            post(keys::create_key),
        ),
        (
            doc("DELETE", "/v1/api-keys/{id}", KEYS, "Revoke an API key").ok::<RevokedKey>(200).errors(&[]),
            delete(keys::revoke_key),
        ),
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
