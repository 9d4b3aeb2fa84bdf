//! Tool arguments: checked before anything reaches Salesforce. Each tool's arguments are parsed
//! into a typed [`Call`] (unknown arguments refused, names and ids checked with forcelink-client's
//! name types, the user-administration inputs with the actions' own input types), so a mistake
//! comes back to the agent as a message naming the argument, and no Salesforce call is spent.
//!
//! `soql_query`'s continuation ([`Cursor`]) is opaque to the agent: the connection, a hash of the
//! query, the query locator Salesforce gave (`…/query/01g…-2000`) and how many records of that
//! page were already returned.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use forcelink_client::actions::{ActionName, CreateUser, ResetPassword, UpdateUser, UploadDocument, UserRef};
use forcelink_client::types::{FieldName, RecordId, SObjectType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::catalog::{DEFAULT_MAX_ROWS, MAX_ROWS};

/// A tool call, checked.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    ListConnections,
    SoqlQuery {
        query: String,
        max_rows: usize,
        cursor: Option<Cursor>,
    },
    SoslSearch {
        search: String,
    },
    ListSObjects,
    DescribeSObject {
        sobject: SObjectType,
    },
    GetRecord {
        sobject: SObjectType,
        id: RecordId,
        fields: Option<Vec<FieldName>>,
    },
    CreateRecord {
        sobject: SObjectType,
        fields: Map<String, Value>,
    },
    UpdateRecord {
        sobject: SObjectType,
        id: RecordId,
        fields: Map<String, Value>,
    },
    DeleteRecord {
        sobject: SObjectType,
        id: RecordId,
    },
    Limits,
    /// A user-administration action or the document upload, with its checked JSON input.
    Action(ActionName, Value),
}

/// A checked call and the connection it is on (none for `list_connections`).
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub connection: Option<String>,
    pub call: Call,
}

/// Why arguments were refused: a message for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgError(pub String);

fn invalid(tool: &str, what: impl std::fmt::Display) -> ArgError {
    ArgError(format!("{tool}: invalid arguments: {what}; see the tool's inputSchema"))
}

fn typed<T: DeserializeOwned>(tool: &str, args: &Map<String, Value>) -> Result<T, ArgError> {
    serde_json::from_value(Value::Object(args.clone())).map_err(|e| invalid(tool, e))
}

fn connection_name(tool: &str, name: &str) -> Result<String, ArgError> {
    forcelink_store::connection::validate_name(name).map_err(|e| invalid(tool, format!("connection: {}", e.0)))?;
    Ok(name.to_owned())
}

fn sobject(tool: &str, name: &str) -> Result<SObjectType, ArgError> {
    SObjectType::new(name).map_err(|e| invalid(tool, format!("sobject: {e}")))
}

fn record_id(tool: &str, id: &str) -> Result<RecordId, ArgError> {
    RecordId::new(id).map_err(|e| invalid(tool, format!("id: {e}")))
}

fn field_values(tool: &str, fields: Map<String, Value>) -> Result<Map<String, Value>, ArgError> {
    if fields.is_empty() {
        return Err(invalid(tool, "fields: give at least one field"));
    }
    for name in fields.keys() {
        FieldName::new(name.as_str()).map_err(|e| invalid(tool, format!("fields: {e}")))?;
    }
    Ok(fields)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnConnection {
    connection: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoqlArgs {
    connection: String,
    query: String,
    max_rows: Option<u64>,
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoslArgs {
    connection: String,
    search: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeArgs {
    connection: String,
    sobject: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    connection: String,
    sobject: String,
    id: String,
    fields: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateArgs {
    connection: String,
    sobject: String,
    fields: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateArgs {
    connection: String,
    sobject: String,
    id: String,
    fields: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteArgs {
    connection: String,
    sobject: String,
    id: String,
}

/// Checks `args` for tool `tool` (which the caller found in the catalog).
pub(crate) fn parse(tool: &str, args: Option<Map<String, Value>>) -> Result<Parsed, ArgError> {
    let args = args.unwrap_or_default();
    let on = |c: &str, call: Call| -> Result<Parsed, ArgError> {
        Ok(Parsed { connection: Some(connection_name(tool, c)?), call })
    };
    match tool {
        "list_connections" => {
            if let Some(name) = args.keys().next() {
                return Err(invalid(tool, format!("unknown argument `{name}`: this tool takes none")));
            }
            Ok(Parsed { connection: None, call: Call::ListConnections })
        }
        "list_sobjects" | "limits" => {
            let a: OnConnection = typed(tool, &args)?;
            on(&a.connection, if tool == "limits" { Call::Limits } else { Call::ListSObjects })
        }
        "soql_query" => {
            let a: SoqlArgs = typed(tool, &args)?;
            let connection = connection_name(tool, &a.connection)?;
            if a.query.trim().is_empty() {
                return Err(invalid(tool, "query: the SOQL query is empty"));
            }
            let max_rows = a.max_rows.unwrap_or(DEFAULT_MAX_ROWS);
            if !(1..=MAX_ROWS).contains(&max_rows) {
                return Err(invalid(tool, format!("max_rows: {max_rows} is not between 1 and {MAX_ROWS}")));
            }
            let cursor = match a.next {
                Some(text) => Some(Cursor::decode(&text, &connection, &a.query).map_err(|e| invalid(tool, e))?),
                None => None,
            };
            let call = Call::SoqlQuery { query: a.query, max_rows: max_rows as usize, cursor };
            Ok(Parsed { connection: Some(connection), call })
        }
        "sosl_search" => {
            let a: SoslArgs = typed(tool, &args)?;
            if a.search.trim().is_empty() {
                return Err(invalid(tool, "search: the SOSL search is empty"));
            }
            on(&a.connection, Call::SoslSearch { search: a.search })
        }
        "describe_sobject" => {
            let a: DescribeArgs = typed(tool, &args)?;
            on(&a.connection, Call::DescribeSObject { sobject: sobject(tool, &a.sobject)? })
        }
        "get_record" => {
            let a: GetArgs = typed(tool, &args)?;
            let fields = match a.fields {
                None => None,
                Some(list) if list.is_empty() => return Err(invalid(tool, "fields: name at least one field")),
                Some(list) => Some(
                    list.into_iter()
                        .map(|f| FieldName::new(f).map_err(|e| invalid(tool, format!("fields: {e}"))))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let call = Call::GetRecord { sobject: sobject(tool, &a.sobject)?, id: record_id(tool, &a.id)?, fields };
            on(&a.connection, call)
        }
        "create_record" => {
            let a: CreateArgs = typed(tool, &args)?;
            let call =
                Call::CreateRecord { sobject: sobject(tool, &a.sobject)?, fields: field_values(tool, a.fields)? };
            on(&a.connection, call)
        }
        "update_record" => {
            let a: UpdateArgs = typed(tool, &args)?;
            let call = Call::UpdateRecord {
                sobject: sobject(tool, &a.sobject)?,
                id: record_id(tool, &a.id)?,
                fields: field_values(tool, a.fields)?,
            };
            on(&a.connection, call)
        }
        "delete_record" => {
            let a: DeleteArgs = typed(tool, &args)?;
            on(&a.connection, Call::DeleteRecord { sobject: sobject(tool, &a.sobject)?, id: record_id(tool, &a.id)? })
        }
        other => {
            let action = super::catalog::find(other)
                .and_then(|_| ActionName::ALL.into_iter().find(|a| a.as_str().replace('-', "_") == other))
                .ok_or_else(|| ArgError(format!("no tool named {other:?}; see tools/list")))?;
            let mut input = args;
            let connection = match input.remove("connection") {
                Some(Value::String(c)) => c,
                Some(_) => return Err(invalid(tool, "connection: give a connection name")),
                None => return Err(invalid(tool, "missing field `connection`")),
            };
            check_action(tool, action, &input)?;
            on(&connection, Call::Action(action, Value::Object(input)))
        }
    }
}

/// Parses an action's input with the action's own type, so the action will accept it.
fn check_action(tool: &str, action: ActionName, input: &Map<String, Value>) -> Result<(), ArgError> {
    match action {
        ActionName::CreateUser => typed::<CreateUser>(tool, input).map(drop),
        ActionName::UpdateUser => {
            let u: UpdateUser = typed(tool, input)?;
            field_values(tool, u.fields).map(drop)
        }
        ActionName::ResetPassword => typed::<ResetPassword>(tool, input).map(drop),
        ActionName::UploadDocument => typed::<UploadDocument>(tool, input).map(drop),
        _ => {
            let u: UserRef = typed(tool, input)?;
            if u.user.trim().is_empty() {
                return Err(invalid(tool, "user: give a user id (005…) or username"));
            }
            Ok(())
        }
    }
}

/// Where `soql_query` goes on (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The connection.
    #[serde(rename = "c")]
    pub connection: String,
    /// The first 16 hex digits of the query's SHA-256.
    #[serde(rename = "q")]
    pub query: String,
    /// The page's query locator path; none for the first page (the query is run again).
    #[serde(rename = "l")]
    pub locator: Option<String>,
    /// Records of that page already returned.
    #[serde(rename = "s")]
    pub skip: usize,
}

/// The hash a cursor keeps of its query.
pub(crate) fn query_hash(query: &str) -> String {
    hex::encode(&Sha256::digest(query.as_bytes())[..8])
}

/// Whether `path` is a query locator path Salesforce hands out (`/services/data/vNN.N/query/…`):
/// the only kind of URL a cursor may make the broker fetch.
pub(crate) fn is_locator(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/services/data/v") else { return false };
    let Some((version, tail)) = rest.split_once('/') else { return false };
    let version_ok = version
        .split_once('.')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()));
    let locator = tail.strip_prefix("query/").or_else(|| tail.strip_prefix("queryAll/"));
    version_ok && locator.is_some_and(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

impl Cursor {
    /// The text an answer gives as `next`.
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The cursor in `text`, when it was made for this connection and query.
    pub(crate) fn decode(text: &str, connection: &str, query: &str) -> Result<Cursor, String> {
        let bad = || "next: not a `next` value this tool gave".to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.locator.as_deref().is_some_and(|l| !is_locator(l)) {
            return Err(bad());
        }
        if cursor.connection != connection || cursor.query != query_hash(query) {
            return Err("next: it continues another query or connection; send the same `query` and `connection`".into());
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::catalog::TOOLS;
    use serde_json::json;

    fn args(v: Value) -> Option<Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => panic!("arguments are an object"),
        }
    }

    fn err(tool: &str, v: Value) -> String {
        match parse(tool, args(v)) {
            Ok(p) => panic!("{tool}: accepted {p:?}"),
            Err(ArgError(m)) => m,
        }
    }

    /// A value each argument name takes, for building complete argument sets from the schemas.
    fn sample(name: &str) -> Value {
        match name {
            "connection" => json!("prod"),
            "query" => json!("SELECT Id FROM Account"),
            "max_rows" => json!(5),
            "search" => json!("FIND {Acme}"),
            "sobject" => json!("Account"),
            "id" => json!("001000000000001AAA"),
            "user" => json!("005000000000001AAA"),
            "username" | "email" => json!("ada@example.com"),
            "content_base64" => json!("aGVsbG8="),
            "fields" => json!({"Name": "Acme"}),
            _ => json!("x"),
        }
    }

    /// Every tool accepts exactly its schema: all its properties (but `next`, which only an
    /// earlier answer gives) and its required ones alone; each required one left out is named.
    #[test]
    fn every_tool_accepts_its_schema_and_names_a_missing_argument() {
        for tool in &TOOLS {
            let schema = (tool.input)();
            let props = schema["properties"].as_object().unwrap();
            let required: Vec<&str> =
                schema["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
            let mut all = Map::new();
            for name in props.keys().filter(|n| *n != "next") {
                let value = if tool.name == "get_record" && name == "fields" { json!(["Name"]) } else { sample(name) };
                all.insert(name.clone(), value);
            }
            let parsed = parse(tool.name, Some(all.clone())).unwrap_or_else(|e| panic!("{}: {e:?}", tool.name));
            assert_eq!(parsed.connection.is_some(), required.contains(&"connection"), "{}", tool.name);
            let minimal: Map<String, Value> = all
                .iter()
                .filter(|(k, _)| required.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            parse(tool.name, Some(minimal.clone()))
                .unwrap_or_else(|e| panic!("{} with required only: {e:?}", tool.name));
            for r in &required {
                let mut less = minimal.clone();
                less.remove(*r);
                let message = err(tool.name, Value::Object(less));
                assert!(message.contains(r), "{}: {message}", tool.name);
            }
            let mut more = minimal.clone();
            more.insert("surprise".into(), json!(1));
            let message = err(tool.name, Value::Object(more));
            assert!(message.contains("surprise"), "{}: {message}", tool.name);
        }
        assert!(parse("no_such_tool", None).unwrap_err().0.contains("tools/list"));
    }

    #[test]
    fn connection_names_are_checked() {
        for bad in [json!(""), json!("../etc"), json!("a b"), json!(7)] {
            let message = err("limits", json!({ "connection": bad }));
            assert!(message.contains("connection") || message.contains("invalid type"), "{message}");
        }
        let message = err("freeze_user", json!({"connection": 5, "user": "a@b.c"}));
        assert!(message.contains("connection"), "{message}");
    }

    #[test]
    fn soql_query_checks_the_query_the_row_cap_and_the_cursor() {
        assert!(err("soql_query", json!({"connection": "prod", "query": "  "})).contains("empty"));
        for n in [0, 2001] {
            let message =
                err("soql_query", json!({"connection": "prod", "query": "SELECT Id FROM User", "max_rows": n}));
            assert!(message.contains("max_rows"), "{message}");
        }
        assert!(
            err("soql_query", json!({"connection": "prod", "query": "q", "max_rows": "ten"})).contains("invalid type")
        );
        let Call::SoqlQuery { max_rows, cursor, .. } =
            parse("soql_query", args(json!({"connection": "prod", "query": "SELECT Id FROM User"}))).unwrap().call
        else {
            panic!("a query")
        };
        assert_eq!((max_rows, cursor), (200, None));

        let query = "SELECT Id FROM Account";
        let cursor = Cursor {
            connection: "prod".into(),
            query: query_hash(query),
            locator: Some("/services/data/v64.0/query/01gD0000000001-2000".into()),
            skip: 5,
        };
        let next = cursor.encode();
        let parsed = parse("soql_query", args(json!({"connection": "prod", "query": query, "next": next}))).unwrap();
        assert!(matches!(parsed.call, Call::SoqlQuery { cursor: Some(c), .. } if c == cursor));
        // Another query or connection, or a forged locator, is refused.
        let message = err("soql_query", json!({"connection": "prod", "query": "SELECT Id FROM User", "next": next}));
        assert!(message.contains("another query"), "{message}");
        assert!(
            err("soql_query", json!({"connection": "sandbox", "query": query, "next": next})).contains("another query")
        );
        for locator in
            ["/services/data/v64.0/sobjects/User/005", "https://evil.example/x", "/services/data/v64.0/query/../../x"]
        {
            let forged = Cursor { locator: Some(locator.into()), ..cursor.clone() }.encode();
            let message = err("soql_query", json!({"connection": "prod", "query": query, "next": forged}));
            assert!(message.contains("not a `next`"), "{locator}: {message}");
        }
        assert!(
            err("soql_query", json!({"connection": "prod", "query": query, "next": "%%%"})).contains("not a `next`")
        );
        assert!(is_locator("/services/data/v64.0/queryAll/01gD0000000001-4000"));
        assert!(!is_locator("/services/data/vX/query/01g"));
    }

    #[test]
    fn sosl_search_refuses_an_empty_search() {
        assert!(err("sosl_search", json!({"connection": "prod", "search": ""})).contains("empty"));
    }

    #[test]
    fn record_tools_check_object_names_ids_and_fields() {
        for tool in ["describe_sobject", "get_record", "delete_record"] {
            let message =
                err(tool, json!({"connection": "prod", "sobject": "Account; DELETE", "id": "001000000000001AAA"}));
            assert!(message.contains("sobject"), "{tool}: {message}");
        }
        for id in ["001", "001000000000001AA!", "../../005000000000001"] {
            for tool in ["get_record", "delete_record"] {
                let message = err(tool, json!({"connection": "prod", "sobject": "Account", "id": id}));
                assert!(message.contains("id"), "{tool} {id}: {message}");
            }
        }
        let base = json!({"connection": "prod", "sobject": "Account", "id": "001000000000001AAA"});
        let with = |k: &str, v: Value| {
            let mut m = base.clone();
            m[k] = v;
            m
        };
        assert!(err("update_record", with("fields", json!({}))).contains("at least one"));
        assert!(err("update_record", with("fields", json!(["Name"]))).contains("invalid type"));
        assert!(err("update_record", with("fields", json!({"Bad Name": 1}))).contains("fields"));
        assert!(err("get_record", with("fields", json!([]))).contains("at least one"));
        assert!(err("get_record", with("fields", json!(["Name", "x y"]))).contains("fields"));
        assert!(
            err("create_record", json!({"connection": "prod", "sobject": "Account", "fields": {}}))
                .contains("at least one")
        );
        assert!(
            err(
                "create_record",
                json!({"connection": "prod", "sobject": "Account", "fields": {"Name": 1}, "id": "001000000000001AAA"})
            )
            .contains("id")
        );
        let Call::UpdateRecord { sobject, id, fields } =
            parse("update_record", args(with("fields", json!({"Name": "x"})))).unwrap().call
        else {
            panic!("an update")
        };
        assert_eq!((sobject.as_str(), id.as_str(), fields.len()), ("Account", "001000000000001AAA", 1));
    }

    #[test]
    fn user_admin_tools_take_the_actions_inputs() {
        let message = err(
            "create_user",
            json!({"connection": "prod", "username": "ada@example.com", "email": "ada@example.com"}),
        );
        assert!(message.contains("last_name"), "{message}");
        assert!(err("freeze_user", json!({"connection": "prod", "user": " "})).contains("user"));
        assert!(err("freeze_user", json!({"connection": "prod", "user": "a@b.c", "reason": "x"})).contains("reason"));
        assert!(
            err("update_user", json!({"connection": "prod", "user": "a@b.c", "fields": {}})).contains("at least one")
        );
        let message = err(
            "upload_document",
            json!({"connection": "prod", "title": "t", "file_name": "f.txt", "content_base64": "not base64!"}),
        );
        assert!(message.contains("content") || message.contains("base64") || message.contains("Invalid"), "{message}");
        let Call::Action(action, input) =
            parse("reset_password", args(json!({"connection": "prod", "user": "a@b.c"}))).unwrap().call
        else {
            panic!("an action")
        };
        assert_eq!(action, ActionName::ResetPassword);
        assert_eq!(input, json!({"user": "a@b.c"}), "connection is not passed on");
        assert!(err("list_connections", json!({"connection": "prod"})).contains("takes none"));
    }
}
