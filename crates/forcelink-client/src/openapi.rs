//! An OpenAPI 3.1 document for chosen sObjects, so any tool that imports OpenAPI can call
//! Salesforce through the broker's proxy: create, retrieve, update and delete per object, and
//! SOQL query. Schemas come from describe: field types and formats, required fields on create
//! (not nillable, not defaulted), picklist values as enums, string lengths as `maxLength`,
//! read-only fields.
//!
//! The server is the proxy base the caller gives ([`GeneratorOptions::new`]; the broker's is
//! `/v1/connections/{connection}/sf`) with the connection name as a server variable; the paths
//! under it are Salesforce's own (`/services/data/vXX.X/…`). This crate does not know the
//! broker's URL layout.

use serde_json::{Map, Value, json};

use crate::describe::{FieldDescribe, SObjectDescribe};
use crate::version::ApiVersion;

/// The server variable's default connection name.
pub const DEFAULT_CONNECTION: &str = "default";
/// The document's `info.title`. Defaults to this.
pub const DEFAULT_TITLE: &str = "Salesforce through forcelink";

/// What to generate. Every default is a named constant.
#[derive(Debug, Clone)]
pub struct GeneratorOptions {
    /// The server URL: the proxy a connection's requests go through, with `{connection}`
    /// where the connection name goes.
    pub proxy_base: String,
    /// Defaults to [`DEFAULT_CONNECTION`].
    pub default_connection: String,
    /// The API version the paths are written for (`/services/data/vXX.X/…`).
    pub api_version: ApiVersion,
    /// `info.title` of the document. Defaults to [`DEFAULT_TITLE`].
    pub title: String,
}

impl GeneratorOptions {
    /// Options for `api_version` with requests sent through `proxy_base` (which holds
    /// `{connection}`); the other settings at their defaults.
    pub fn new(api_version: ApiVersion, proxy_base: impl Into<String>) -> Self {
        Self {
            proxy_base: proxy_base.into(),
            default_connection: DEFAULT_CONNECTION.to_owned(),
            api_version,
            title: DEFAULT_TITLE.to_owned(),
        }
    }
}

/// The JSON Schema of one field's value.
fn field_schema(f: &FieldDescribe) -> Value {
    let mut s = match f.field_type.as_str() {
        "boolean" => json!({"type": "boolean"}),
        "int" => json!({"type": "integer"}),
        "double" | "currency" | "percent" => json!({"type": "number"}),
        "date" => json!({"type": "string", "format": "date"}),
        "datetime" => json!({"type": "string", "format": "date-time"}),
        "time" => json!({"type": "string", "format": "time"}),
        "email" => json!({"type": "string", "format": "email"}),
        "url" => json!({"type": "string", "format": "uri"}),
        "base64" => json!({"type": "string", "contentEncoding": "base64"}),
        "address" | "location" => json!({"type": "object"}),
        "anyType" | "complexvalue" | "json" => json!({}),
        // id, reference, string, textarea, phone, picklist, multipicklist, combobox, encryptedstring…
        _ => json!({"type": "string"}),
    };
    if s["type"] == "string" && f.length > 0 && !matches!(f.field_type.as_str(), "date" | "datetime" | "time") {
        s["maxLength"] = json!(f.length);
    }
    if f.field_type == "picklist" {
        let values: Vec<Value> = f.picklist_values.iter().filter(|p| p.active).map(|p| json!(p.value)).collect();
        if !values.is_empty() {
            s["enum"] = Value::Array(values);
        }
    }
    if f.nillable && s.get("type").is_some() {
        let t = s["type"].clone();
        s["type"] = json!([t, "null"]);
        if let Some(Value::Array(e)) = s.get_mut("enum") {
            e.push(Value::Null);
        }
    }
    let mut desc = f.label.clone();
    if let Some(help) = f.inline_help_text.as_deref().filter(|h| !h.is_empty()) {
        desc = format!("{desc}. {help}");
    }
    if !desc.is_empty() {
        s["description"] = json!(desc);
    }
    if !f.reference_to.is_empty() {
        s["x-salesforce-reference-to"] = json!(f.reference_to);
    }
    s["x-salesforce-type"] = json!(f.field_type);
    s
}

fn object_schemas(d: &SObjectDescribe) -> (Value, Value, Value) {
    let mut all = Map::new();
    let mut create = Map::new();
    let mut update = Map::new();
    let mut required = Vec::new();
    all.insert(
        "attributes".into(),
        json!({"type": "object", "readOnly": true, "properties": {"type": {"type": "string"}, "url": {"type": "string"}}}),
    );
    for f in &d.fields {
        let s = field_schema(f);
        let mut read = s.clone();
        if !f.createable && !f.updateable {
            read["readOnly"] = json!(true);
        }
        all.insert(f.name.clone(), read);
        if f.createable {
            create.insert(f.name.clone(), s.clone());
            if !f.nillable && !f.defaulted_on_create && f.field_type != "boolean" {
                required.push(json!(f.name));
            }
        }
        if f.updateable {
            update.insert(f.name.clone(), s);
        }
    }
    let title = if d.label.is_empty() { d.name.clone() } else { d.label.clone() };
    let mut create = json!({"type": "object", "title": format!("{title} (create)"), "properties": create});
    if !required.is_empty() {
        create["required"] = Value::Array(required);
    }
    (
        json!({"type": "object", "title": title, "properties": all}),
        create,
        json!({"type": "object", "title": format!("{title} (update)"), "properties": update}),
    )
}

fn errors_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorList"}}}})
}

/// The OpenAPI 3.1 document for `describes`.
pub fn generate(describes: &[SObjectDescribe], options: &GeneratorOptions) -> Value {
    let base = format!("/services/data/{}", options.api_version.segment());
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "SaveResult".into(),
        json!({"type": "object", "required": ["success"], "properties": {
            "id": {"type": "string"}, "success": {"type": "boolean"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Error"}}}}),
    );
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["message"], "properties": {
            "message": {"type": "string"}, "errorCode": {"type": "string"}, "statusCode": {"type": "string"},
            "fields": {"type": "array", "items": {"type": "string"}}}}),
    );
    schemas.insert("ErrorList".into(), json!({"type": "array", "items": {"$ref": "#/components/schemas/Error"}}));
    schemas.insert(
        "QueryResult".into(),
        json!({"type": "object", "required": ["totalSize", "done", "records"], "properties": {
            "totalSize": {"type": "integer"}, "done": {"type": "boolean"},
            "nextRecordsUrl": {"type": "string", "description": "GET this path (under the same server) for the next page"},
            "records": {"type": "array", "items": {"type": "object"}}}}),
    );
    paths.insert(
        format!("{base}/query"),
        json!({"get": {
            "operationId": "query",
            "summary": "Run a SOQL query (first page; follow nextRecordsUrl for more)",
            "tags": ["query"],
            "parameters": [{"name": "q", "in": "query", "required": true, "schema": {"type": "string"},
                "description": "SOQL, e.g. SELECT Id, Name FROM Account"}],
            "responses": {
                "200": {"description": "A page of records", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryResult"}}}},
                "400": errors_response("Malformed query")
            }
        }}),
    );
    let mut tags = vec![json!({"name": "query", "description": "SOQL queries"})];
    let mut seen = std::collections::BTreeSet::new();
    for d in describes {
        let name = d.name.clone();
        if !seen.insert(name.to_ascii_lowercase()) {
            continue;
        }
        let (all, create, update) = object_schemas(d);
        schemas.insert(name.clone(), all);
        schemas.insert(format!("{name}Create"), create);
        schemas.insert(format!("{name}Update"), update);
        tags.push(json!({"name": name, "description": if d.label_plural.is_empty() { name.clone() } else { d.label_plural.clone() }}));
        let r = |s: &str| json!({"$ref": format!("#/components/schemas/{s}")});
        let mut collection = Map::new();
        if d.createable {
            collection.insert(
                "post".into(),
                json!({
                    "operationId": format!("create{name}"), "summary": format!("Create a {name}"), "tags": [name],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": r(&format!("{name}Create"))}}},
                    "responses": {
                        "201": {"description": "Created", "content": {"application/json": {"schema": r("SaveResult")}}},
                        "400": errors_response("Invalid fields")
                    }
                }),
            );
        }
        if !collection.is_empty() {
            paths.insert(format!("{base}/sobjects/{name}"), Value::Object(collection));
        }
        let mut item = Map::new();
        item.insert(
            "parameters".into(),
            json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$"}}]),
        );
        item.insert(
            "get".into(),
            json!({
                "operationId": format!("get{name}"), "summary": format!("Retrieve a {name}"), "tags": [name],
                "parameters": [{"name": "fields", "in": "query", "required": false, "schema": {"type": "string"},
                    "description": "Comma-separated field names (all fields without it)"}],
                "responses": {
                    "200": {"description": "The record", "content": {"application/json": {"schema": r(&name)}}},
                    "404": errors_response("Not found")
                }
            }),
        );
        if d.updateable {
            item.insert(
                "patch".into(),
                json!({
                    "operationId": format!("update{name}"), "summary": format!("Update a {name}"), "tags": [name],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": r(&format!("{name}Update"))}}},
                    "responses": {"204": {"description": "Updated"}, "400": errors_response("Invalid fields"), "404": errors_response("Not found")}
                }),
            );
        }
        if d.deletable {
            item.insert(
                "delete".into(),
                json!({
                    "operationId": format!("delete{name}"), "summary": format!("Delete a {name}"), "tags": [name],
                    "responses": {"204": {"description": "Deleted"}, "404": errors_response("Not found")}
                }),
            );
        }
        paths.insert(format!("{base}/sobjects/{name}/{{id}}"), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": options.title,
            "version": options.api_version.as_str(),
            "description": "Salesforce REST API for the chosen sObjects, called through the forcelink broker's proxy, \
                            which adds the connection's access token."
        },
        "servers": [{
            "url": options.proxy_base,
            "description": "The forcelink broker's proxy for one connection",
            "variables": {"connection": {"default": options.default_connection, "description": "Connection name"}}
        }],
        "security": [{"brokerApiKey": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"brokerApiKey": {"type": "http", "scheme": "bearer", "description": "A forcelink broker API key"}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broker's proxy path, the base these tests generate for.
    const PROXY_BASE: &str = "/v1/connections/{connection}/sf";

    fn field(name: &str, t: &str, extra: Value) -> FieldDescribe {
        let mut v = json!({"name": name, "label": name, "type": t, "createable": true, "updateable": true});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn schemas_follow_describe() {
        let d = SObjectDescribe {
            fields: vec![
                field("Id", "id", json!({"createable": false, "updateable": false, "length": 18})),
                field("Name", "string", json!({"length": 80})),
                field("Stage", "picklist", json!({"nillable": true, "picklistValues": [
                    {"value": "Open", "active": true}, {"value": "Old", "active": false}]})),
                field("Amount", "currency", json!({"nillable": true})),
                field("Done", "boolean", json!({})),
            ],
            ..serde_json::from_value(json!({"name": "Deal__c", "label": "Deal", "createable": true, "updateable": true, "deletable": true, "fields": []})).unwrap()
        };
        let doc = generate(&[d], &GeneratorOptions::new(ApiVersion::new("64.0").unwrap(), PROXY_BASE));
        let s = &doc["components"]["schemas"];
        assert_eq!(s["Deal__cCreate"]["required"], json!(["Name"]));
        assert_eq!(s["Deal__c"]["properties"]["Name"]["maxLength"], 80);
        assert_eq!(s["Deal__c"]["properties"]["Id"]["readOnly"], true);
        assert!(s["Deal__cCreate"]["properties"].get("Id").is_none());
        assert_eq!(s["Deal__c"]["properties"]["Stage"]["enum"], json!(["Open", null]));
        assert_eq!(s["Deal__c"]["properties"]["Amount"]["type"], json!(["number", "null"]));
        assert_eq!(doc["servers"][0]["url"], PROXY_BASE);
        assert!(doc["paths"]["/services/data/v64.0/sobjects/Deal__c/{id}"]["delete"].is_object());
    }
}
