//! What describe answers hold: [`DescribeGlobal`] (the org's objects), [`SObjectDescribe`] (one
//! object's fields, [`FieldDescribe`]) and the per-connection cache entry the [`Client`] keeps
//! for them. The requests are in [`crate::sobjects`].
//!
//! [`Client`]: crate::Client

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET /sobjects`: the org's objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeGlobal {
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub max_batch_size: Option<u32>,
    pub sobjects: Vec<GlobalSObject>,
}

/// One object of describeGlobal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalSObject {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub label_plural: String,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub custom: bool,
    #[serde(default)]
    pub createable: bool,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub deletable: bool,
    #[serde(default)]
    pub queryable: bool,
    #[serde(default)]
    pub searchable: bool,
    /// Every other key, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `GET /sobjects/{Type}/describe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SObjectDescribe {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub label_plural: String,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub custom: bool,
    #[serde(default)]
    pub createable: bool,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub deletable: bool,
    #[serde(default)]
    pub queryable: bool,
    pub fields: Vec<FieldDescribe>,
    #[serde(default)]
    pub child_relationships: Vec<Value>,
    #[serde(default)]
    pub record_type_infos: Vec<Value>,
    #[serde(default)]
    pub urls: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl SObjectDescribe {
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// One field of a describe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// `id`, `string`, `boolean`, `picklist`, `reference`, `datetime`, `currency`…
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default)]
    pub soap_type: Option<String>,
    #[serde(default)]
    pub length: u64,
    #[serde(default)]
    pub byte_length: Option<u64>,
    #[serde(default)]
    pub precision: u64,
    #[serde(default)]
    pub scale: u64,
    #[serde(default)]
    pub digits: u64,
    #[serde(default)]
    pub nillable: bool,
    #[serde(default)]
    pub createable: bool,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub defaulted_on_create: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub external_id: bool,
    #[serde(default)]
    pub id_lookup: bool,
    #[serde(default)]
    pub calculated: bool,
    #[serde(default)]
    pub custom: bool,
    #[serde(default)]
    pub picklist_values: Vec<PicklistValue>,
    #[serde(default)]
    pub reference_to: Vec<String>,
    #[serde(default)]
    pub relationship_name: Option<String>,
    #[serde(default)]
    pub inline_help_text: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One picklist entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValue {
    pub value: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub default_value: bool,
}

fn yes() -> bool {
    true
}

/// A describe held by the client, with what revalidating it needs.
#[derive(Debug, Clone)]
pub(crate) struct CachedDescribe {
    pub(crate) describe: Arc<SObjectDescribe>,
    pub(crate) fetched_at: SystemTime,
    /// `Last-Modified` when sent, else the client's time of the fetch.
    pub(crate) validator: SystemTime,
}
