//! The tools the MCP server offers: each one's name, description, JSON Schema and effect, in one
//! list ([`TOOLS`]) that `tools/list`, the argument parser's tests and the docs follow. The
//! argument names are a contract with agents' prompts and must not change.
//!
//! The user-administration tools take the same inputs as the actions API: their schemas come
//! from the API's own input types ([`crate::body`]), with `connection` added.

use serde_json::{Map, Value, json};
use utoipa::PartialSchema;

use crate::body::{CreateUserInput, NAME_PATTERN, ResetPasswordInput, UpdateUserInput, UploadDocumentInput, UserInput};

/// What calling a tool does to the org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Reads only (`readOnlyHint`); allowed to read-only keys.
    Read,
    /// Changes data: `destructiveHint` when it may overwrite or remove something,
    /// `idempotentHint` when repeating it changes nothing more.
    Write { destructive: bool, idempotent: bool },
}

/// One tool.
#[derive(Debug)]
pub(crate) struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub effect: Effect,
    /// Its input's JSON Schema.
    pub input: fn() -> Value,
}

impl ToolSpec {
    /// Whether the tool changes data (and is therefore refused to read-only keys).
    pub(crate) fn writes(&self) -> bool {
        self.effect != Effect::Read
    }

    /// The tool as `tools/list` shows it.
    pub(crate) fn descriptor(&self) -> Value {
        let (read_only, destructive, idempotent) = match self.effect {
            Effect::Read => (true, false, true),
            Effect::Write { destructive, idempotent } => (false, destructive, idempotent),
        };
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": (self.input)(),
            "annotations": {
                "title": self.title,
                "readOnlyHint": read_only,
                "destructiveHint": destructive,
                "idempotentHint": idempotent,
                // The org is a closed world: tools touch nothing but the connection's org.
                "openWorldHint": false,
            },
        })
    }
}

const fn write(destructive: bool, idempotent: bool) -> Effect {
    Effect::Write { destructive, idempotent }
}

/// Every tool, in the order `tools/list` shows them.
pub(crate) const TOOLS: [ToolSpec; 19] = [
    ToolSpec {
        name: "list_connections",
        title: "List connections",
        description: "The Salesforce connections this API key may use, with their state. Every other tool takes one of these names as `connection`.",
        effect: Effect::Read,
        input: no_arguments,
    },
    ToolSpec {
        name: "soql_query",
        title: "Run a SOQL query",
        description: "Runs a SOQL query as written and returns up to `max_rows` records (default 200, at most 2000). When more match, the answer's `next` continues: call again with the same `query` and that `next`.",
        effect: Effect::Read,
        input: soql_query,
    },
    ToolSpec {
        name: "sosl_search",
        title: "Run a SOSL search",
        description: "Runs a SOSL search as written (`FIND {Acme} IN NAME FIELDS RETURNING Account(Id, Name)`) and returns the matching records.",
        effect: Effect::Read,
        input: sosl_search,
    },
    ToolSpec {
        name: "list_sobjects",
        title: "List sObjects",
        description: "The objects of the org (standard and custom) with what the connection's user may do with each.",
        effect: Effect::Read,
        input: connection_only,
    },
    ToolSpec {
        name: "describe_sobject",
        title: "Describe an sObject",
        description: "One object's fields (name, label, type, whether required, createable, updateable), picklist values, references and child relationships: what a query or a record change needs.",
        effect: Effect::Read,
        input: describe_sobject,
    },
    ToolSpec {
        name: "get_record",
        title: "Get a record",
        description: "One record by id, with the given `fields` (all fields the user can see when omitted).",
        effect: Effect::Read,
        input: get_record,
    },
    ToolSpec {
        name: "create_record",
        title: "Create a record",
        description: "Creates a record of `sobject` with `fields` (API names → values); returns its id.",
        effect: write(false, false),
        input: create_record,
    },
    ToolSpec {
        name: "update_record",
        title: "Update a record",
        description: "Sets `fields` (API names → values) on the record `id` of `sobject`.",
        effect: write(true, true),
        input: update_record,
    },
    ToolSpec {
        name: "delete_record",
        title: "Delete a record",
        description: "Deletes the record `id` of `sobject` (it goes to the org's recycle bin).",
        effect: write(true, true),
        input: delete_record,
    },
    ToolSpec {
        name: "limits",
        title: "Org limits",
        description: "The org's limits and what is left of each (daily API requests, storage, …).",
        effect: Effect::Read,
        input: connection_only,
    },
    ToolSpec {
        name: "create_user",
        title: "Create a user",
        description: "Creates a user (username, last name, email and a profile by id or name; locale settings default to en_US / America/Los_Angeles). Nothing changes when the username exists: its id is returned.",
        effect: write(false, true),
        input: create_user,
    },
    ToolSpec {
        name: "update_user",
        title: "Update a user",
        description: "Sets User `fields` (API names → values) on a user given by id or username.",
        effect: write(true, true),
        input: update_user,
    },
    ToolSpec {
        name: "activate_user",
        title: "Activate a user",
        description: "Sets `IsActive` on a user given by id or username.",
        effect: write(false, true),
        input: user_only,
    },
    ToolSpec {
        name: "deactivate_user",
        title: "Deactivate a user",
        description: "Clears `IsActive` on a user given by id or username: they can no longer sign in.",
        effect: write(true, true),
        input: user_only,
    },
    ToolSpec {
        name: "freeze_user",
        title: "Freeze a user",
        description: "Freezes a user's login (`UserLogin.IsFrozen`): they cannot sign in until unfrozen; nothing else changes.",
        effect: write(true, true),
        input: user_only,
    },
    ToolSpec {
        name: "unfreeze_user",
        title: "Unfreeze a user",
        description: "Unfreezes a user's login (`UserLogin.IsFrozen`).",
        effect: write(false, true),
        input: user_only,
    },
    ToolSpec {
        name: "remove_user_entitlements",
        title: "Remove a user's entitlements",
        description: "Removes a user's permission set assignments, permission set licences and package licences; lists what was removed and what Salesforce refused.",
        effect: write(true, true),
        input: user_only,
    },
    ToolSpec {
        name: "reset_password",
        title: "Reset a password",
        description: "Sets `new_password` on a user, or has Salesforce generate one. A generated password is never shown through MCP.",
        effect: write(true, false),
        input: reset_password,
    },
    ToolSpec {
        name: "upload_document",
        title: "Upload a document",
        description: "Uploads a file (ContentVersion; content in base64), optionally shared with the record `link_to`.",
        effect: write(false, false),
        input: upload_document,
    },
];

/// The tool named `name`.
pub(crate) fn find(name: &str) -> Option<&'static ToolSpec> {
    TOOLS.iter().find(|t| t.name == name)
}

/// An API name pattern (objects and fields): what forcelink-client's name types accept.
pub(crate) const API_NAME_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_]{0,79}$";
/// A 15- or 18-character record id.
pub(crate) const RECORD_ID_PATTERN: &str = "^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$";
/// Default and largest `max_rows` of `soql_query`.
pub(crate) const DEFAULT_MAX_ROWS: u64 = 200;
/// See [`DEFAULT_MAX_ROWS`]. 2000: one page of Salesforce's own.
pub(crate) const MAX_ROWS: u64 = 2000;

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

fn connection() -> Value {
    json!({ "type": "string", "pattern": NAME_PATTERN, "description": "A connection name from list_connections." })
}

fn sobject() -> Value {
    json!({ "type": "string", "pattern": API_NAME_PATTERN, "description": "The object's API name (Account, Invoice__c)." })
}

fn record_id() -> Value {
    json!({ "type": "string", "pattern": RECORD_ID_PATTERN, "description": "The record's 15- or 18-character id." })
}

fn field_values(what: &str) -> Value {
    json!({ "type": "object", "minProperties": 1, "additionalProperties": true, "description": what })
}

fn no_arguments() -> Value {
    object(json!({}), &[])
}

fn connection_only() -> Value {
    object(json!({ "connection": connection() }), &["connection"])
}

fn soql_query() -> Value {
    object(
        json!({
            "connection": connection(),
            "query": { "type": "string", "minLength": 1, "description": "SOQL, sent as written (SELECT Id, Name FROM Account WHERE …)." },
            "max_rows": { "type": "integer", "minimum": 1, "maximum": MAX_ROWS, "default": DEFAULT_MAX_ROWS, "description": "Most records to return." },
            "next": { "type": "string", "minLength": 1, "description": "The `next` of an earlier answer to this query: returns the records after it." },
        }),
        &["connection", "query"],
    )
}

fn sosl_search() -> Value {
    object(
        json!({
            "connection": connection(),
            "search": { "type": "string", "minLength": 1, "description": "SOSL, sent as written (FIND {…} …)." },
        }),
        &["connection", "search"],
    )
}

fn describe_sobject() -> Value {
    object(json!({ "connection": connection(), "sobject": sobject() }), &["connection", "sobject"])
}

fn get_record() -> Value {
    object(
        json!({
            "connection": connection(),
            "sobject": sobject(),
            "id": record_id(),
            "fields": { "type": "array", "items": { "type": "string", "pattern": API_NAME_PATTERN }, "minItems": 1, "description": "Field API names to return." },
        }),
        &["connection", "sobject", "id"],
    )
}

fn create_record() -> Value {
    object(
        json!({ "connection": connection(), "sobject": sobject(), "fields": field_values("Field API names → values.") }),
        &["connection", "sobject", "fields"],
    )
}

fn update_record() -> Value {
    object(
        json!({
            "connection": connection(),
            "sobject": sobject(),
            "id": record_id(),
            "fields": field_values("Field API names → new values."),
        }),
        &["connection", "sobject", "id", "fields"],
    )
}

fn delete_record() -> Value {
    object(
        json!({ "connection": connection(), "sobject": sobject(), "id": record_id() }),
        &["connection", "sobject", "id"],
    )
}

/// An action input's schema (from the API's input type) with `connection` in front.
fn action<T: PartialSchema>() -> Value {
    let schema = serde_json::to_value(T::schema()).unwrap_or_default();
    let mut properties = Map::new();
    properties.insert("connection".to_owned(), connection());
    if let Some(Value::Object(own)) = schema.get("properties") {
        properties.extend(own.clone());
    }
    let mut required = vec![json!("connection")];
    if let Some(Value::Array(own)) = schema.get("required") {
        required.extend(own.iter().cloned());
    }
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

fn create_user() -> Value {
    action::<CreateUserInput>()
}
fn update_user() -> Value {
    action::<UpdateUserInput>()
}
fn user_only() -> Value {
    action::<UserInput>()
}
fn reset_password() -> Value {
    action::<ResetPasswordInput>()
}
fn upload_document() -> Value {
    action::<UploadDocumentInput>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_closed_object_schema_and_honest_annotations() {
        let mut names = std::collections::BTreeSet::new();
        for tool in &TOOLS {
            assert!(names.insert(tool.name), "{} twice", tool.name);
            let d = tool.descriptor();
            let schema = &d["inputSchema"];
            assert_eq!(schema["type"], "object", "{}", tool.name);
            assert_eq!(schema["additionalProperties"], false, "{}", tool.name);
            let required: Vec<&str> =
                schema["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
            for r in &required {
                assert!(schema["properties"][r].is_object(), "{}: {r} required but not described", tool.name);
            }
            // Every tool but list_connections works on one connection, named `connection`.
            assert_eq!(required.contains(&"connection"), tool.name != "list_connections", "{}", tool.name);
            let a = &d["annotations"];
            assert_eq!(a["readOnlyHint"], !tool.writes(), "{}", tool.name);
            if !tool.writes() {
                assert_eq!(a["destructiveHint"], false);
            }
        }
        let destructive: Vec<&str> = TOOLS
            .iter()
            .filter(|t| matches!(t.effect, Effect::Write { destructive: true, .. }))
            .map(|t| t.name)
            .collect();
        assert!(destructive.contains(&"delete_record") && destructive.contains(&"deactivate_user"));
        assert!(!destructive.contains(&"create_record"));
        // The user-admin tools take the actions API's fields.
        let create = (find("create_user").unwrap().input)();
        assert!(create["properties"]["profile_name"].is_object() && create["properties"]["connection"].is_object());
        let required = create["required"].as_array().unwrap();
        for r in ["connection", "username", "last_name", "email"] {
            assert!(required.contains(&json!(r)), "{r}");
        }
        assert!(find("nope").is_none());
    }
}
