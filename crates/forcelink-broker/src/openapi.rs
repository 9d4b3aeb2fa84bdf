//! `/v1/openapi.json`: an OpenAPI 3.1 document built from the route table
//! ([`crate::routes::docs`]) — every documented route with its parameters, scope and answers.

use axum::Json;
use serde_json::{Map, Value, json};

use crate::routes::{RouteDoc, docs};

/// Methods an `ANY` route is documented with.
const ANY_METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn operation(d: &RouteDoc, method: &str) -> Value {
    let params: Vec<Value> = d
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|p| json!({ "name": p, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    let id: String = format!("{method}_{}", d.path)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let error = json!({ "$ref": "#/components/responses/Error" });
    let mut responses = Map::new();
    let creates = method == "post" && (d.path == "/v1/connections" || d.path == "/v1/api-keys");
    let success = if creates { "201" } else { "200" };
    responses.insert(success.into(), json!({ "description": "Success" }));
    let mut errors: Vec<&str> = Vec::new();
    if d.access.scope().is_some() {
        errors.extend(["401", "403"]);
    }
    if d.path.contains('{') {
        errors.push("404");
    }
    if d.body {
        errors.extend(["400", "413", "415"]);
    }
    if d.path.contains("/v1/connections") && (d.body || method == "delete" || creates) {
        errors.push("409");
    }
    let reaches_salesforce = ["/token", "/test", "/sf/", "/actions/"].iter().any(|p| d.path.contains(p));
    if reaches_salesforce {
        errors.extend(["409", "502"]);
    }
    if d.path.contains("/sf/") {
        errors.extend(["400", "405", "413"]);
    }
    if d.access.scope().is_some() || d.path == "/readyz" {
        // The store (or, for a request, the time limit) may be unavailable.
        errors.push("503");
    }
    for code in errors {
        responses.insert(code.into(), error.clone());
    }
    let mut op = json!({
        "summary": d.summary,
        "operationId": id,
        "parameters": params,
        "responses": responses,
    });
    if let Some(scope) = d.access.scope() {
        op["security"] = json!([{ "apiKey": [] }]);
        op["description"] = json!(format!("Needs an API key with the `{scope}` scope (and the connection)."));
    } else {
        op["security"] = json!([]);
    }
    if d.body {
        op["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": { "type": "object" } } } });
    }
    op
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for d in docs().iter().filter(|d| d.api) {
        let item = paths.entry(d.path.to_owned()).or_insert_with(|| json!({}));
        let methods: Vec<String> = if d.method == "ANY" {
            ANY_METHODS.iter().map(|m| (*m).to_owned()).collect()
        } else {
            vec![d.method.to_ascii_lowercase()]
        };
        for m in methods {
            item[m.as_str()] = operation(d, &m);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "forcelink broker",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Salesforce tokens, a proxy and actions by connection name.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "flk_<id>_<secret> from `forcelink apikey create`" }
            },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "required": ["error"],
                        "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                            "code": { "type": "string" }, "message": { "type": "string" }
                        } } }
                    } } }
                }
            }
        }
    })
}

pub async fn handler() -> Json<Value> {
    Json(document())
}
