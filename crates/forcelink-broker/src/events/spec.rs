//! What a subscription is (its [`Spec`], kept as JSON in the store), what its consumer reports
//! ([`Report`]), which events pass its filter, and the bodies and ids of what it delivers.

use std::time::SystemTime;

use forcelink_client::pubsub::{Event, ReplayId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::ErrorResponse;

/// Where a new subscription starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Replay {
    /// Events from when its consumer first connects.
    #[default]
    Latest,
    /// Everything Salesforce still keeps (72 hours).
    Earliest,
}

/// Change types a filter may name (CDC guide, `ChangeEventHeader.changeType`).
pub(crate) const CHANGE_TYPES: [&str; 9] = [
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
];

/// Most change types or fields a filter names. 100.
pub(crate) const MAX_FILTER_ITEMS: usize = 100;
/// Longest snapshot query. 10,000 characters.
pub(crate) const MAX_SNAPSHOT_LEN: usize = 10_000;

/// A change type, as the API documents it (the filter takes them in any case).
#[derive(ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)] // a schema only
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
enum ChangeType {
    Create,
    Update,
    Delete,
    Undelete,
    GapCreate,
    GapUpdate,
    GapDelete,
    GapUndelete,
    GapOverflow,
}

/// A field's API name (parts of a compound field as `BillingAddress.City`).
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
#[schema(value_type = String, pattern = "^[A-Za-z0-9_][A-Za-z0-9_.]{0,254}$")]
struct FieldName(String);

/// Which events are delivered; empty lists let everything through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filter {
    /// Change types to deliver (`CREATE`, `UPDATE`, `DELETE`, `UNDELETE`, or a `GAP_…` type).
    /// A gap event is delivered when the change type it stands for is wanted, `GAP_OVERFLOW`
    /// always: a lost change is never hidden.
    #[serde(default)]
    #[schema(max_items = 100, inline, value_type = Vec<ChangeType>)]
    pub change_types: Vec<String>,
    /// Updates are delivered only when they change one of these fields (API names; parts of a
    /// compound field as `BillingAddress.City`); creates, deletes and undeletes always are.
    #[serde(default)]
    #[schema(max_items = 100, inline, value_type = Vec<FieldName>)]
    pub fields: Vec<String>,
}

/// A subscription's description, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub topic: String,
    #[serde(default)]
    pub replay: Replay,
    #[serde(default)]
    pub filter: Filter,
    /// A SOQL query whose rows are delivered first (`salesforce.snapshot`), before the stream.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// True once every snapshot row is in the outbox (the stream's events wait until they are
    /// all delivered).
    #[serde(default)]
    pub snapshot_enqueued: bool,
    /// Skip changes this broker made (`changeOrigin` naming its client id).
    #[serde(default)]
    pub echo_suppression: bool,
}

impl Spec {
    /// The spec as stored.
    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The spec read back.
    pub(crate) fn parse(text: &str) -> Result<Spec, ErrorResponse> {
        serde_json::from_str(text).map_err(|e| {
            ErrorResponse::store(&forcelink_auth::error::StoreError::Corrupt(format!("subscription: {e}")))
        })
    }
}

/// Checks a topic: `/data/…ChangeEvent` (or `/data/ChangeEvents`) and `/event/…` only.
pub(crate) fn check_topic(topic: &str) -> Result<(), ErrorResponse> {
    let name_ok = |s: &str| !s.is_empty() && s.len() <= 80 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let ok = match (topic.strip_prefix("/data/"), topic.strip_prefix("/event/")) {
        (Some(rest), _) => name_ok(rest),
        (_, Some(rest)) => name_ok(rest),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ErrorResponse::bad_request(format!(
            "topic {:?} is not a Pub/Sub topic: use /data/<Object>ChangeEvent (change events), /data/ChangeEvents, \
             or /event/<Name>__e (platform events)",
            topic.chars().take(100).collect::<String>()
        )))
    }
}

impl Filter {
    /// Checks and normalises the lists (trimmed, change types upper-cased, no duplicates).
    pub(crate) fn checked(self) -> Result<Filter, ErrorResponse> {
        if self.change_types.len() > MAX_FILTER_ITEMS || self.fields.len() > MAX_FILTER_ITEMS {
            return Err(ErrorResponse::bad_request(format!(
                "filter: at most {MAX_FILTER_ITEMS} change types and {MAX_FILTER_ITEMS} fields"
            )));
        }
        let mut change_types: Vec<String> = Vec::new();
        for t in &self.change_types {
            let t = t.trim().to_ascii_uppercase();
            if !CHANGE_TYPES.contains(&t.as_str()) {
                return Err(ErrorResponse::bad_request(format!(
                    "filter.change_types: {t:?} is not a change type; use {}",
                    CHANGE_TYPES.join(", ")
                )));
            }
            if !change_types.contains(&t) {
                change_types.push(t);
            }
        }
        let mut fields: Vec<String> = Vec::new();
        for f in &self.fields {
            let f = f.trim();
            let ok = !f.is_empty()
                && f.len() <= 255
                && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                && !f.starts_with('.');
            if !ok {
                return Err(ErrorResponse::bad_request(format!(
                    "filter.fields: {:?} is not a field's API name",
                    f.chars().take(100).collect::<String>()
                )));
            }
            if !fields.iter().any(|x| x == f) {
                fields.push(f.to_owned());
            }
        }
        Ok(Filter { change_types, fields })
    }

    /// Whether `event` passes.
    pub(crate) fn passes(&self, event: &Event) -> bool {
        let Some(h) = &event.header else { return true };
        let kind = h.change_type.as_str();
        if !self.change_types.is_empty() {
            let wanted = |t: &str| self.change_types.iter().any(|w| w == t);
            let ok = match kind.strip_prefix("GAP_") {
                Some("OVERFLOW") => true,
                Some(stands_for) => wanted(kind) || wanted(stands_for),
                None => wanted(kind),
            };
            if !ok {
                return false;
            }
        }
        if !self.fields.is_empty() && kind == "UPDATE" {
            let named = |f: &String| {
                self.fields.iter().any(|w| {
                    w.eq_ignore_ascii_case(f)
                        || f.split_once('.').is_some_and(|(parent, _)| w.eq_ignore_ascii_case(parent))
                })
            };
            return h.changed_fields.iter().chain(&h.nulled_fields).chain(&h.diff_fields).any(named);
        }
        true
    }
}

/// Whether a change was made by a client calling itself `client_id` (`changeOrigin` is
/// `com/salesforce/api/<api>/<version>;client=<id>`, CDC guide "ChangeEventHeader Fields").
pub(crate) fn made_by(event: &Event, client_id: &str) -> bool {
    let Some(h) = &event.header else { return false };
    h.change_origin
        .split(';')
        .skip(1)
        .filter_map(|part| part.trim().strip_prefix("client="))
        .any(|c| c.trim() == client_id)
}

/// The `webhook-id` of an event: the same for every delivery of the same event of a connection's
/// topic, so receivers de-duplicate (`evt_` + 32 hex digits of SHA-256 over connection, topic
/// and replay id).
pub(crate) fn event_id(connection: &str, topic: &str, replay: &ReplayId) -> String {
    let mut h = Sha256::new();
    h.update(connection.as_bytes());
    h.update([0]);
    h.update(topic.as_bytes());
    h.update([0]);
    h.update(replay.as_bytes());
    format!("evt_{}", &hex::encode(h.finalize())[..32])
}

/// The `webhook-id` of a snapshot row: by subscription and record id (or row number when the
/// query selects no `Id`).
pub(crate) fn snapshot_id(subscription: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(subscription.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    format!("snap_{}", &hex::encode(h.finalize())[..32])
}

/// The `data` of a `salesforce.event`.
pub(crate) fn event_data(topic: &str, event: &Event) -> Value {
    let mut data = json!({
        "topic": topic,
        "replay_id": event.replay_id.to_base64(),
        "event": Value::Object(event.payload.clone()),
    });
    if !event.event_id.is_empty() {
        data["event_id"] = json!(event.event_id);
    }
    if let Some(h) = &event.header {
        data["change"] = json!({
            "entity": h.entity_name,
            "record_ids": h.record_ids,
            "type": h.change_type,
            "changed_fields": h.changed_fields,
            "nulled_fields": h.nulled_fields,
            "diff_fields": h.diff_fields,
            "commit_timestamp": h.commit_timestamp,
            "commit_user": h.commit_user,
            "transaction_key": h.transaction_key,
            "sequence": h.sequence_number,
            "origin": h.change_origin,
            "gap": h.change_type.starts_with("GAP_"),
        });
    }
    data
}

/// A whole delivery body: `{"type", "timestamp", "data"}`.
pub(crate) fn body(kind: &str, at: SystemTime, data: Value) -> String {
    json!({ "type": kind, "timestamp": crate::time::rfc3339_millis(at), "data": data }).to_string()
}

pub(crate) use crate::relay::Report;

#[cfg(test)]
mod tests {
    use super::*;
    use forcelink_client::pubsub::ChangeHeader;
    use serde_json::Map;

    fn change(kind: &str, changed: &[&str], origin: &str) -> Event {
        Event {
            replay_id: ReplayId::from_bytes(vec![0, 0, 0, 0, 0, 0, 0, 9]),
            schema_id: "s".into(),
            event_id: String::new(),
            payload: Map::new(),
            header: Some(ChangeHeader {
                entity_name: "Account".into(),
                record_ids: vec!["001000000000001AAA".into()],
                change_type: kind.into(),
                change_origin: origin.into(),
                transaction_key: "t".into(),
                sequence_number: 1,
                commit_timestamp: 1,
                commit_number: 1,
                commit_user: "005".into(),
                changed_fields: changed.iter().map(|s| s.to_string()).collect(),
                nulled_fields: vec![],
                diff_fields: vec![],
            }),
        }
    }

    #[test]
    fn filters_pass_wanted_types_and_fields_and_never_hide_gaps() {
        let f = Filter { change_types: vec!["update".into(), " CREATE ".into()], fields: vec!["Industry".into()] }
            .checked()
            .unwrap();
        assert_eq!(f.change_types, ["UPDATE", "CREATE"]);
        assert!(f.passes(&change("UPDATE", &["Industry", "LastModifiedDate"], "")));
        assert!(!f.passes(&change("UPDATE", &["Name"], "")));
        assert!(f.passes(&change("CREATE", &["Name"], "")), "creates pass any field filter");
        assert!(!f.passes(&change("DELETE", &[], "")));
        assert!(f.passes(&change("GAP_UPDATE", &[], "")), "a gap of a wanted type is delivered");
        assert!(!f.passes(&change("GAP_DELETE", &[], "")));
        assert!(f.passes(&change("GAP_OVERFLOW", &[], "")), "overflow is always delivered");
        let compound = Filter { change_types: vec![], fields: vec!["BillingAddress".into()] };
        assert!(compound.passes(&change("UPDATE", &["BillingAddress.City"], "")));
        assert!(Filter { change_types: vec!["NOPE".into()], fields: vec![] }.checked().is_err());
        assert!(Filter { change_types: vec![], fields: vec!["a b".into()] }.checked().is_err());
    }

    #[test]
    fn echo_is_recognised_by_the_client_in_change_origin() {
        assert!(made_by(
            &change("UPDATE", &[], "com/salesforce/api/rest/66.0;client=forcelink-broker"),
            "forcelink-broker"
        ));
        assert!(!made_by(&change("UPDATE", &[], "com/salesforce/api/rest/66.0;client=other"), "forcelink-broker"));
        assert!(!made_by(&change("UPDATE", &[], "com/salesforce/api/rest/66.0"), "forcelink-broker"));
        assert!(!made_by(&change("UPDATE", &[], ""), "forcelink-broker"));
    }

    #[test]
    fn ids_are_stable_per_event_and_differ_between_events() {
        let r = ReplayId::from_bytes(vec![1, 2]);
        assert_eq!(event_id("a", "/data/X", &r), event_id("a", "/data/X", &r));
        assert_ne!(event_id("a", "/data/X", &r), event_id("b", "/data/X", &r));
        assert_ne!(event_id("a", "/data/X", &r), event_id("a", "/data/X", &ReplayId::from_bytes(vec![1, 3])));
        assert!(event_id("a", "/data/X", &r).starts_with("evt_"));
        assert_ne!(snapshot_id("sub_1", "001A"), snapshot_id("sub_2", "001A"));
    }

    #[test]
    fn topics_are_checked() {
        for ok in ["/data/AccountChangeEvent", "/data/ChangeEvents", "/event/Order_Placed__e"] {
            assert!(check_topic(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/data/", "data/AccountChangeEvent", "/topic/x", "/data/a b", "/event/x/../y"] {
            assert!(check_topic(bad).is_err(), "{bad}");
        }
    }
}
