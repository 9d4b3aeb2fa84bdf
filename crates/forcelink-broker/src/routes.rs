//! The route table: every route with its method, path, access rule and summary next to its
//! handler. The router (each route wrapped in [`crate::access::guard`] for its [`Access`]) and
//! the OpenAPI document are both built from it, so neither the document nor the checks can
//! drift from what is served.

use axum::Router;
use axum::middleware;
use axum::routing::{MethodRouter, any, delete, get, post, put};
use forcelink_client::actions::ActionName;
use forcelink_store::Scope;
use utoipa::PartialSchema;

use crate::access::{Access, Caller, Guard};
use crate::body::*;
use crate::openapi::{Answer, BodyType, ParamSchema, RouteDoc, doc, page, protocol};
use crate::state::BrokerState;
use crate::{actions, api, authorize, connect, events, keys, mcp, metrics, openapi, proxy, web, webhooks};

const PUBLIC: Access = Access::Public;
const ADMIN: Access = Access::Key(Scope::Admin);
const SESSION: Access = Access::Session;
const KEYS: Access = Access::KeyAllConnections(Scope::Admin);
const PAGE: Access = Access::Page;
const EVENTS: Access = Access::Key(Scope::Events);

/// A delivery's place in the outbox: a positive 64-bit integer.
fn delivery_seq() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(i64::MAX))
        .into()
}

/// A delivery's state, as a filter.
fn delivery_state() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(["pending", "delivered", "failed"]))
        .into()
}

/// Where an event stream starts.
fn replay_preset() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).enum_values(Some(["latest", "earliest"])).into()
}

/// How many deliveries to list: 1 to 1000.
fn delivery_limit() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Integer)).minimum(Some(1)).maximum(Some(1000)).into()
}

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
            doc("GET", "/metrics", KEYS, "Prometheus metrics")
                .answer(200, Answer::Text("application/openmetrics-text"))
                .errors(&[]),
            get(metrics_handler),
        ),
        (
            doc("GET", "/v1/openapi.json", PUBLIC, "This document")
                .answer(200, Answer::Json(vec![BodyType::of::<Document>()])),
            get(openapi_handler),
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
                .variants("action", action_inputs())
                .ok::<ActionOutput>(200)
                .errors(&[409, 502]),
            post(actions::run_action),
        ),
        (
            // JSON-RPC over streamable HTTP (stateless: no GET stream, no session to DELETE).
            protocol("POST", "/mcp", Access::Key(Scope::Mcp), "MCP server: tools on the key's connections"),
            post(mcp::endpoint),
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
        (
            doc("GET", "/v1/webhooks", ADMIN, "List webhooks (no secrets), with delivery counts")
                .ok::<webhooks::WebhookList>(200)
                .errors(&[]),
            get(webhooks::list_webhooks),
        ),
        (
            doc("POST", "/v1/webhooks", ADMIN, "Add a webhook (its signing secret is in this answer only)")
                .takes::<webhooks::NewWebhook>()
                .ok::<webhooks::CreatedWebhook>(201)
                .errors(&[]),
            post(webhooks::create_webhook),
        ),
        (
            doc("DELETE", "/v1/webhooks/{id}", ADMIN, "Delete a webhook and its pending deliveries")
                .ok::<webhooks::DeletedWebhook>(200)
                .errors(&[]),
            delete(webhooks::delete_webhook),
        ),
        (
            doc("GET", "/v1/webhooks/{id}/deliveries", ADMIN, "A webhook's deliveries, newest first")
                .query("state", "Only `pending`, `delivered` or `failed` ones.", delivery_state)
                .query("limit", "At most this many (1 to 1000, default 100).", delivery_limit)
                .ok::<webhooks::DeliveryList>(200)
                .errors(&[400]),
            get(webhooks::list_deliveries),
        ),
        (
            doc("POST", "/v1/webhooks/{id}/deliveries/{seq}/retry", ADMIN, "Send a failed delivery again")
                .path("seq", delivery_seq)
                .ok::<webhooks::RetriedDelivery>(200)
                .errors(&[400, 409]),
            post(webhooks::retry_delivery),
        ),
        (
            doc("GET", "/v1/connections/{name}/events", EVENTS, "A topic's events as server-sent events")
                .query("topic", "`/data/AccountChangeEvent`, `/data/ChangeEvents` or `/event/Name__e`.", string)
                .query(
                    "replay",
                    "Where to start without `Last-Event-ID`: `latest` (default) or `earliest`.",
                    replay_preset,
                )
                .query("change_types", "Only these change types (comma-separated).", string)
                .query("fields", "Only updates of these fields (comma-separated).", string)
                .answer(200, Answer::Text("text/event-stream"))
                .errors(&[400, 409, 502]),
            get(events::sse::stream),
        ),
        (
            doc("GET", "/v1/subscriptions", EVENTS, "List event subscriptions (no secrets), with lag and checkpoint")
                .ok::<events::SubscriptionList>(200)
                .errors(&[]),
            get(events::list_subscriptions),
        ),
        (
            doc(
                "POST",
                "/v1/subscriptions",
                EVENTS,
                "Relay a topic's events to a receiver (its secret is in this answer only)",
            )
            .takes::<events::NewSubscription>()
            .ok::<events::CreatedSubscription>(201)
            // The connection named in the body does not exist.
            .errors(&[404]),
            post(events::create_subscription),
        ),
        (
            doc("GET", "/v1/subscriptions/{id}", EVENTS, "A subscription: state, lag, last delivery, checkpoint")
                .ok::<events::SubscriptionView>(200)
                .errors(&[]),
            get(events::get_subscription),
        ),
        (
            doc("POST", "/v1/subscriptions/{id}/pause", EVENTS, "Stop reading and delivering until resumed")
                .ok::<events::SubscriptionView>(200)
                .errors(&[]),
            post(events::pause_subscription),
        ),
        (
            doc("POST", "/v1/subscriptions/{id}/resume", EVENTS, "Read and deliver again, from where it stopped")
                .ok::<events::SubscriptionView>(200)
                .errors(&[]),
            post(events::resume_subscription),
        ),
        (
            doc("DELETE", "/v1/subscriptions/{id}", EVENTS, "Delete a subscription and its pending deliveries")
                .ok::<events::DeletedSubscription>(200)
                .errors(&[]),
            delete(events::delete_subscription),
        ),
        (
            doc("GET", "/v1/subscriptions/{id}/deliveries", EVENTS, "A subscription's latest deliveries, newest first")
                .ok::<webhooks::DeliveryList>(200)
                .errors(&[]),
            get(events::list_deliveries),
        ),
        (
            doc("POST", "/v1/connect-sessions", ADMIN, "A one-time link a person opens to sign a connection in")
                .takes::<connect::NewConnectSession>()
                .ok::<connect::ConnectSessionAnswer>(201)
                .errors(&[409]),
            post(connect::create_session),
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
        (page("GET", "/webhooks", SESSION, "Webhooks"), get(web::webhooks_page)),
        (page("GET", "/subscriptions", SESSION, "Event subscriptions"), get(web::subscriptions_page)),
        (page("POST", "/webhooks", SESSION, "Add a webhook"), post(web::webhooks_create)),
        (page("POST", "/webhooks/{id}/delete", SESSION, "Delete a webhook"), post(web::webhooks_delete)),
        (
            page("POST", "/webhooks/{id}/deliveries/{seq}/retry", SESSION, "Send a failed delivery again"),
            post(web::webhooks_retry),
        ),
        (page("GET", "/oauth/callback", PAGE, "The web-server flow's redirect"), get(authorize::callback)),
        (page("GET", "/connect/{token}", PAGE, "A connect link"), get(connect::page)),
        (page("POST", "/connect/{token}", PAGE, "Use a connect link"), post(connect::start)),
    ]
}

/// The input schema of each action (by its name in the path).
fn action_inputs() -> Vec<(&'static str, BodyType)> {
    ActionName::ALL
        .iter()
        .map(|a| {
            let body = match a {
                ActionName::CreateUser => BodyType::of::<CreateUserInput>(),
                ActionName::UpdateUser => BodyType::of::<UpdateUserInput>(),
                ActionName::ResetPassword => BodyType::of::<ResetPasswordInput>(),
                ActionName::UploadDocument => BodyType::of::<UploadDocumentInput>(),
                _ => BodyType::of::<UserInput>(),
            };
            (a.as_str(), body)
        })
        .collect()
}

/// Every route's documentation.
pub(crate) fn docs() -> Vec<RouteDoc> {
    table().into_iter().map(|(d, _)| d).collect()
}

/// The router (without state, limits and middleware: see [`crate::router`]).
/// Each route runs [`crate::access::guard`] for its access rule before its handler (and before
/// its body is read).
pub(crate) fn build(state: &BrokerState) -> Router<BrokerState> {
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

/// The OpenAPI document of the route table, as JSON.
pub(crate) fn document() -> serde_json::Value {
    openapi::document(&docs())
}

async fn openapi_handler() -> axum::Json<serde_json::Value> {
    axum::Json(document())
}

async fn metrics_handler(
    axum::extract::State(state): axum::extract::State<BrokerState>,
    _caller: axum::Extension<Caller>,
) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every route of the table is in the document with every status it answers; the token and
    /// connection schemas say what the server sends and accepts.
    #[tokio::test]
    async fn the_document_lists_every_route_status_and_field() {
        let doc = document();
        for d in docs().iter().filter(|d| d.api) {
            let methods: Vec<String> = if d.method == "ANY" {
                ["get", "post", "put", "patch", "delete"].map(String::from).to_vec()
            } else {
                vec![d.method.to_ascii_lowercase()]
            };
            assert!(!d.answers.is_empty(), "{} {} documents no answer", d.method, d.path);
            // A route whose path parameter picks the body is shown as one path per value.
            let paths: Vec<String> = match &d.variants {
                Some((param, bodies)) => {
                    bodies.iter().map(|(v, _)| d.path.replace(&format!("{{{param}}}"), v)).collect()
                }
                None => vec![d.path.to_owned()],
            };
            for path in &paths {
                for m in &methods {
                    let op = &doc["paths"][path][m];
                    assert!(op.is_object(), "{m} {path} missing");
                    for (status, _) in &d.answers {
                        assert!(op["responses"][status.to_string()].is_object(), "{m} {path} lacks {status}");
                    }
                    assert_eq!(op["responses"].as_object().unwrap().len(), d.answers.len(), "{m} {path}");
                    assert_eq!(op["requestBody"].is_object(), d.body, "{m} {path}");
                    if d.access.scope().is_some() {
                        for status in ["401", "403", "503"] {
                            assert!(op["responses"][status].is_object(), "{m} {path} lacks {status}");
                        }
                    }
                }
            }
        }
        // Each action has its own input schema.
        let upload = &doc["paths"]["/v1/connections/{name}/actions/upload-document"]["post"];
        assert_eq!(
            upload["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/UploadDocumentInput"
        );
        assert!(doc["paths"].get("/v1/connections/{name}/actions/{action}").is_none());
        let routes =
            |p: &str, m: &str| doc["paths"][p][m]["responses"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(routes("/v1/connections/{name}/token", "get"), ["200", "401", "403", "404", "409", "502", "503"]);
        assert_eq!(routes("/v1/api-keys", "post"), ["201", "400", "401", "403", "413", "415", "503"]);
        assert_eq!(
            routes("/v1/connections/{name}", "put"),
            ["200", "400", "401", "403", "404", "413", "415", "422", "503"]
        );
        assert!(doc["paths"]["/v1/connections/{name}/sf/{path}"]["get"]["responses"]["405"].is_object());

        let schemas = &doc["components"]["schemas"];
        let token = &schemas["TokenAnswer"];
        for field in ["access_token", "instance_url", "token_type", "issued_at", "expires_at", "fingerprint"] {
            assert!(token["properties"][field].is_object(), "{field} in {token}");
        }
        assert_eq!(token["properties"]["expires_at"]["type"], json!(["string", "null"]), "{token}");
        assert_eq!(token["properties"]["fingerprint"]["type"], "string");
        let params = &doc["paths"]["/v1/connections/{name}/token"]["get"]["parameters"];
        let rejected = params.as_array().unwrap().iter().find(|p| p["name"] == "rejected").expect("?rejected=");
        assert_eq!((rejected["in"].clone(), rejected["schema"]["type"].clone()), (json!("query"), json!("string")));

        // The connection body: one variant per method, each with that method's required fields,
        // nothing else allowed, the name and URL patterns of what the server takes.
        let body = &schemas["ConnectionBody"];
        let variants = body["oneOf"].as_array().unwrap();
        assert_eq!(variants.len(), forcelink_store::Method::ALL.len());
        for method in forcelink_store::Method::ALL {
            let v = variants.iter().find(|v| v["properties"]["method"]["enum"] == json!([method.as_str()])).unwrap();
            assert_eq!(v["additionalProperties"], false, "{v}");
            let required: Vec<&str> = v["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
            assert!(required.contains(&"name") && required.contains(&"method"), "{v}");
            for f in method.fields() {
                assert!(v["properties"][f.name].is_object(), "{method}: {}", f.name);
                assert_eq!(required.contains(&f.name), f.required, "{method}: {}", f.name);
            }
            assert_eq!(v["properties"]["name"]["pattern"], "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$");
            // Optional settings may be null or blank ("not set"); a value must be a My Domain URL.
            assert_eq!(
                v["properties"]["login_url"]["pattern"],
                r"^(?:\s*|https://[a-z0-9-]{1,40}\.my\.salesforce\.com)$"
            );
            assert_eq!(v["properties"]["login_url"]["type"], json!(["string", "null"]));
            if method == forcelink_store::Method::AccessToken {
                assert_eq!(
                    v["properties"]["instance_url"]["pattern"],
                    r"^https://[a-z0-9-]{1,40}\.my\.salesforce\.com$"
                );
            }
        }
        // PUT takes the name from the path only.
        for v in schemas["ConnectionEdit"]["oneOf"].as_array().unwrap() {
            assert!(v["properties"].get("name").is_none(), "{v}");
        }
    }
}
