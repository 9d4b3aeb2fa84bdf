//! Running a checked tool call ([`Call`]) on its connection: forcelink-client on the
//! connection's live entry (its token cache and REST client, shared with the rest of the
//! broker), answers shaped for an agent — objects only, describes trimmed to what queries and
//! record changes need, query pages capped with a continuation.

use forcelink_client::Client;
use forcelink_client::describe::{FieldDescribe, SObjectDescribe};
use forcelink_client::query::{MAX_BATCH_SIZE, MIN_BATCH_SIZE, Page};
use forcelink_store::{ApiKeyRecord, Scope};
use serde_json::{Map, Value, json};

use super::args::{Call, Cursor, query_hash};
use super::safety::REDACTED;
use crate::error::ErrorResponse;
use crate::state::BrokerState;

/// Runs `call` on `connection` (none for `list_connections`) for `key`, whose access to the
/// connection the caller checked.
pub(crate) async fn run(
    state: &BrokerState,
    key: &ApiKeyRecord,
    connection: Option<&str>,
    call: Call,
) -> Result<Value, ErrorResponse> {
    let Some(name) = connection else { return list_connections(state, key).await };
    let client = client(state, name).await?;
    let failed = |e| crate::actions::client_error(name, e);
    match call {
        Call::ListConnections => list_connections(state, key).await,
        Call::SoqlQuery { query, max_rows, cursor } => soql_query(&client, name, &query, max_rows, cursor).await,
        Call::SoslSearch { search } => {
            let records = client.search(search).send().await.map_err(failed)?;
            Ok(json!({ "records": records }))
        }
        Call::ListSObjects => {
            let global = client.describe_global().send().await.map_err(failed)?;
            let sobjects: Vec<Value> = global
                .sobjects
                .iter()
                .map(|o| {
                    json!({
                        "name": o.name, "label": o.label, "custom": o.custom, "keyPrefix": o.key_prefix,
                        "queryable": o.queryable, "searchable": o.searchable, "createable": o.createable,
                        "updateable": o.updateable, "deletable": o.deletable,
                    })
                })
                .collect();
            Ok(json!({ "sobjects": sobjects }))
        }
        Call::DescribeSObject { sobject } => {
            let describe = client.sobject(sobject.as_str()).map_err(failed)?.describe().send().await.map_err(failed)?;
            Ok(trimmed(&describe))
        }
        Call::GetRecord { sobject, id, fields } => {
            let mut get = client.sobject(sobject.as_str()).map_err(failed)?.retrieve(id.as_str()).map_err(failed)?;
            if let Some(fields) = fields {
                get = get.fields(fields.iter().map(|f| f.as_str())).map_err(failed)?;
            }
            Ok(json!({ "record": get.send().await.map_err(failed)? }))
        }
        Call::CreateRecord { sobject, fields } => {
            let created =
                client.sobject(sobject.as_str()).map_err(failed)?.create(&fields).send().await.map_err(failed)?;
            Ok(json!({ "id": created.id.as_str(), "created": true }))
        }
        Call::UpdateRecord { sobject, id, fields } => {
            let handler = client.sobject(sobject.as_str()).map_err(failed)?;
            handler.update(id.as_str(), &fields).map_err(failed)?.send().await.map_err(failed)?;
            Ok(json!({ "id": id.as_str(), "updated": fields.keys().collect::<Vec<_>>() }))
        }
        Call::DeleteRecord { sobject, id } => {
            let handler = client.sobject(sobject.as_str()).map_err(failed)?;
            handler.delete(id.as_str()).map_err(failed)?.send().await.map_err(failed)?;
            Ok(json!({ "id": id.as_str(), "deleted": true }))
        }
        Call::Limits => {
            let limits = client.limits().send().await.map_err(failed)?;
            Ok(json!({ "limits": limits }))
        }
        Call::Action(action, input) => {
            if let Some(entry) = state.live_entry(name) {
                entry.counters.actions.inc();
            }
            let mut out = forcelink_client::actions::run(&client, action, input).await.map_err(failed)?;
            if let Some(p) = out.get_mut("generated_password").filter(|p| !p.is_null()) {
                *p = Value::String(REDACTED.to_owned());
                out["note"] = json!(
                    "Salesforce generated a password; it is never shown through MCP. Set one with `new_password`, \
                     or have an administrator reset it outside the agent."
                );
            }
            Ok(out)
        }
    }
}

/// The REST client of connection `name`'s live entry.
async fn client(state: &BrokerState, name: &str) -> Result<Client, ErrorResponse> {
    let entry = state.entry(name).await?;
    entry.client.clone().ok_or_else(|| {
        ErrorResponse::conflict(format!(
            "connection {name:?} has an API version the client cannot use: {}",
            entry.connection.api_version
        ))
    })
}

/// The connections `key` may use over MCP, with what an agent needs to pick one.
async fn list_connections(state: &BrokerState, key: &ApiKeyRecord) -> Result<Value, ErrorResponse> {
    let mut out = Vec::new();
    for stored in state.store().connections().await? {
        if !key.allows(stored.name.as_str(), Scope::Mcp) {
            continue;
        }
        let view = crate::api::view(state, &stored).await;
        out.push(json!({
            "name": view.name,
            "method": view.method,
            "environment": view.environment,
            "instance_url": view.token.instance_url,
            "signed_in": view.token.signed_in,
            "state": view.state,
            "state_reason": view.state_reason,
            "fix": view.fix,
        }));
    }
    Ok(json!({ "connections": out }))
}

/// Up to `max_rows` records from where `cursor` says (the start without one), and the cursor
/// after them.
async fn soql_query(
    client: &Client,
    connection: &str,
    query: &str,
    max_rows: usize,
    cursor: Option<Cursor>,
) -> Result<Value, ErrorResponse> {
    let failed = |e| crate::actions::client_error(connection, e);
    let (locator, skip) = cursor.map(|c| (c.locator, c.skip)).unwrap_or((None, 0));
    let page: Page<Value> = match &locator {
        None => {
            // Pages as long as the rows asked for (Salesforce takes 200 to 2000), so a
            // continuation mostly starts on a page of its own.
            let batch = (max_rows as u32).clamp(MIN_BATCH_SIZE, MAX_BATCH_SIZE);
            client.query(query).batch_size(batch).send().await.map_err(failed)?
        }
        Some(url) => {
            let at =
                Page::<Value> { total_size: 0, done: false, next_records_url: Some(url.clone()), records: Vec::new() };
            at.next_page(client).await.map_err(failed)?.unwrap_or(at)
        }
    };
    let end = (skip + max_rows).min(page.records.len());
    let records = page.records.get(skip.min(end)..end).unwrap_or_default().to_vec();
    let next = if end < page.records.len() {
        Some(Cursor { connection: connection.to_owned(), query: query_hash(query), locator, skip: end })
    } else {
        page.next_records_url.clone().map(|url| Cursor {
            connection: connection.to_owned(),
            query: query_hash(query),
            locator: Some(url),
            skip: 0,
        })
    };
    Ok(json!({
        "totalSize": page.total_size,
        "returned": records.len(),
        "records": records,
        "done": next.is_none(),
        "next": next.map(|c| c.encode()),
    }))
}

/// A describe cut to what an agent needs to query and change records.
pub(crate) fn trimmed(d: &SObjectDescribe) -> Value {
    let fields: Vec<Value> = d.fields.iter().map(field).collect();
    let children: Vec<Value> = d
        .child_relationships
        .iter()
        .filter(|c| c.get("relationshipName").is_some_and(|n| !n.is_null()))
        .map(|c| json!({ "childSObject": c["childSObject"], "field": c["field"], "relationshipName": c["relationshipName"] }))
        .collect();
    let record_types: Vec<Value> = d
        .record_type_infos
        .iter()
        .filter(|r| r["active"].as_bool().unwrap_or(true) && r["available"].as_bool().unwrap_or(true))
        .map(|r| json!({ "name": r["name"], "developerName": r["developerName"], "id": r["recordTypeId"] }))
        .collect();
    json!({
        "name": d.name, "label": d.label, "labelPlural": d.label_plural, "keyPrefix": d.key_prefix,
        "custom": d.custom, "queryable": d.queryable, "createable": d.createable,
        "updateable": d.updateable, "deletable": d.deletable,
        "fields": fields, "childRelationships": children, "recordTypes": record_types,
    })
}

fn field(f: &FieldDescribe) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(f.name));
    out.insert("label".into(), json!(f.label));
    out.insert("type".into(), json!(f.field_type));
    // Required on create: not nillable and not filled by Salesforce.
    out.insert("required".into(), json!(f.createable && !f.nillable && !f.defaulted_on_create));
    out.insert("createable".into(), json!(f.createable));
    out.insert("updateable".into(), json!(f.updateable));
    for (flag, on) in [("unique", f.unique), ("externalId", f.external_id), ("calculated", f.calculated)] {
        if on {
            out.insert(flag.into(), json!(true));
        }
    }
    if f.length > 0 {
        out.insert("length".into(), json!(f.length));
    }
    if !f.picklist_values.is_empty() {
        let values: Vec<&str> = f.picklist_values.iter().filter(|p| p.active).map(|p| p.value.as_str()).collect();
        out.insert("picklistValues".into(), json!(values));
    }
    if !f.reference_to.is_empty() {
        out.insert("referenceTo".into(), json!(f.reference_to));
        out.insert("relationshipName".into(), json!(f.relationship_name));
    }
    if let Some(help) = &f.inline_help_text {
        out.insert("help".into(), json!(help));
    }
    Value::Object(out)
}
