//! Resources and prompts. Each connection the key may use has its sObject list as a resource
//! (`forcelink://{connection}/sobjects`), and each object's trimmed describe is reachable through
//! a template (`forcelink://{connection}/sobjects/{sobject}`); reading one runs the same call as
//! `list_sobjects` / `describe_sobject`, with the same checks. The prompts give an agent a way in:
//! `explore_sobject` (describe, then a sample) and `find_records` (a query by one field's value,
//! built with forcelink-client's SOQL builder, which quotes and escapes the value).

use forcelink_client::soql::{Condition, Select};
use forcelink_store::{ApiKeyRecord, Scope};
use serde_json::{Map, Value, json};

use super::args::{ArgError, Call, Parsed};
use crate::error::ErrorResponse;
use crate::state::BrokerState;

/// The scheme of the server's resource URIs.
pub(crate) const SCHEME: &str = "forcelink://";

/// `resources/list`: the sObject list of every connection `key` may use over MCP.
pub(crate) async fn list(state: &BrokerState, key: &ApiKeyRecord) -> Result<Vec<Value>, ErrorResponse> {
    let mut out = Vec::new();
    for stored in state.store().connections().await? {
        let name = stored.name.as_str();
        if key.allows(name, Scope::Mcp) {
            out.push(json!({
                "uri": format!("{SCHEME}{name}/sobjects"),
                "name": format!("{name}-sobjects"),
                "title": format!("sObjects of {name}"),
                "description": format!("The objects of connection {name}'s org (as list_sobjects gives them)."),
                "mimeType": "application/json",
            }));
        }
    }
    Ok(out)
}

/// `resources/templates/list`.
pub(crate) fn templates() -> Vec<Value> {
    vec![json!({
        "uriTemplate": format!("{SCHEME}{{connection}}/sobjects/{{sobject}}"),
        "name": "sobject-describe",
        "title": "Describe of an sObject",
        "description": "One object's fields, types, picklist values and relationships (as describe_sobject gives them).",
        "mimeType": "application/json",
    })]
}

/// The call a resource URI stands for, with the tool whose checks and audit name it shares.
pub(crate) fn parse_uri(uri: &str) -> Result<(&'static str, Parsed), ArgError> {
    let unknown = || ArgError(format!("no resource {uri:?}; see resources/list and resources/templates/list"));
    let rest = uri.strip_prefix(SCHEME).ok_or_else(unknown)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (tool, mut args) = match parts.as_slice() {
        [connection, "sobjects"] => ("list_sobjects", json!({ "connection": connection })),
        [connection, "sobjects", sobject] => {
            ("describe_sobject", json!({ "connection": connection, "sobject": sobject }))
        }
        _ => return Err(unknown()),
    };
    let args = args.as_object_mut().map(std::mem::take);
    let parsed = super::args::parse(tool, args)?;
    debug_assert!(matches!(parsed.call, Call::ListSObjects | Call::DescribeSObject { .. }));
    Ok((tool, parsed))
}

/// `prompts/list`.
pub(crate) fn prompts() -> Vec<Value> {
    let arg = |name: &str, description: &str| json!({ "name": name, "description": description, "required": true });
    vec![
        json!({
            "name": "explore_sobject",
            "title": "Explore an sObject",
            "description": "Learn an object's fields and see a few of its records before querying or changing it.",
            "arguments": [
                arg("connection", "A connection name from list_connections."),
                arg("sobject", "The object's API name (Account, Invoice__c)."),
            ],
        }),
        json!({
            "name": "find_records",
            "title": "Find records by a field's value",
            "description": "A ready SOQL query for the records whose field equals a value, the value quoted and escaped.",
            "arguments": [
                arg("connection", "A connection name from list_connections."),
                arg("sobject", "The object's API name."),
                arg("field", "The field's API name."),
                arg("value", "The value to look for, as text."),
            ],
        }),
    ]
}

/// A prompt, filled in: its connection (checked by the caller against the key) and messages.
#[derive(Debug)]
pub(crate) struct FilledPrompt {
    pub connection: String,
    pub result: Value,
}

fn argument<'a>(args: &'a Map<String, Value>, name: &str) -> Result<&'a str, ArgError> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ArgError(format!("the prompt needs the argument `{name}`")))
}

/// `prompts/get` for `name` with `args`.
pub(crate) fn prompt(name: &str, args: &Map<String, Value>) -> Result<FilledPrompt, ArgError> {
    let connection = argument(args, "connection")?;
    forcelink_store::connection::validate_name(connection).map_err(|e| ArgError(format!("connection: {}", e.0)))?;
    let sobject = argument(args, "sobject")?;
    let built = |select: Select| select.build().map_err(|e| ArgError(e.to_string()));
    let (description, text) = match name {
        "explore_sobject" => {
            let sample =
                built(Select::from(sobject).order_by("CreatedDate", forcelink_client::soql::Order::Desc).limit(5))?;
            (
                format!("Explore {sobject} on {connection}"),
                format!(
                    "Explore the Salesforce object {sobject} on the forcelink connection {connection}.\n\
                     1. Call describe_sobject with connection \"{connection}\" and sobject \"{sobject}\" (or read the \
                     resource {SCHEME}{connection}/sobjects/{sobject}) to learn its fields, which are required, their \
                     picklist values and its relationships.\n\
                     2. Call soql_query with connection \"{connection}\" and this query to see a few records, adding \
                     the fields you found useful to the SELECT list:\n{sample}\n\
                     3. Summarise what the object holds and how it relates to other objects before changing anything."
                ),
            )
        }
        "find_records" => {
            let field = argument(args, "field")?;
            let value = args
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| ArgError("the prompt needs the argument `value`".to_owned()))?;
            let query =
                built(Select::from(sobject).fields(["Id", field]).filter(Condition::eq(field, value)).limit(20))?;
            (
                format!("Find {sobject} records by {field}"),
                format!(
                    "Find the {sobject} records whose {field} equals the given value on the forcelink connection \
                     {connection}: call soql_query with connection \"{connection}\" and exactly this query (the value \
                     is already quoted and escaped; do not edit it):\n{query}\n\
                     If nothing matches, check the field with describe_sobject; for a text search across fields use \
                     sosl_search."
                ),
            )
        }
        other => return Err(ArgError(format!("no prompt named {other:?}; see prompts/list"))),
    };
    Ok(FilledPrompt {
        connection: connection.to_owned(),
        result: json!({
            "description": description,
            "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn resource_uris_map_to_the_tools_and_refuse_others() {
        let (tool, p) = parse_uri("forcelink://prod/sobjects").unwrap();
        assert_eq!((tool, p.connection.as_deref()), ("list_sobjects", Some("prod")));
        let (tool, p) = parse_uri("forcelink://prod/sobjects/Account").unwrap();
        assert_eq!(tool, "describe_sobject");
        assert!(matches!(p.call, Call::DescribeSObject { sobject } if sobject.as_str() == "Account"));
        for bad in [
            "forcelink://prod",
            "https://prod/sobjects",
            "forcelink://prod/sobjects/Account/x",
            "forcelink://../sobjects",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
        assert!(parse_uri("forcelink://prod/sobjects/Bad%20Name").unwrap_err().0.contains("sobject"));
    }

    #[test]
    fn find_records_quotes_and_escapes_the_value_and_checks_names() {
        let p = prompt(
            "find_records",
            &args(json!({"connection": "prod", "sobject": "Contact", "field": "LastName", "value": "O'Brien' OR Name != '"})),
        )
        .unwrap();
        assert_eq!(p.connection, "prod");
        let text = p.result["messages"][0]["content"]["text"].as_str().unwrap();
        assert!(
            text.contains(r"SELECT Id, LastName FROM Contact WHERE LastName = 'O\'Brien\' OR Name != \'' LIMIT 20"),
            "{text}"
        );
        let bad = prompt(
            "find_records",
            &args(json!({"connection": "prod", "sobject": "Contact", "field": "x) OR (1", "value": "v"})),
        );
        assert!(bad.is_err());
        let missing =
            prompt("find_records", &args(json!({"connection": "prod", "sobject": "Contact", "field": "Name"})));
        assert!(missing.unwrap_err().0.contains("value"));
    }

    #[test]
    fn explore_sobject_names_the_tools_and_a_sample_query() {
        let p = prompt("explore_sobject", &args(json!({"connection": "prod", "sobject": "Account"}))).unwrap();
        let text = p.result["messages"][0]["content"]["text"].as_str().unwrap();
        assert!(
            text.contains("describe_sobject")
                && text.contains("SELECT Id FROM Account ORDER BY CreatedDate DESC LIMIT 5")
        );
        assert!(prompt("explore_sobject", &args(json!({"connection": "prod", "sobject": "Account; x"}))).is_err());
        assert!(prompt("explore_sobject", &args(json!({"sobject": "Account"}))).unwrap_err().0.contains("connection"));
        assert!(prompt("nope", &args(json!({"connection": "prod", "sobject": "Account"}))).is_err());
        assert_eq!(prompts().len(), 2);
    }
}
