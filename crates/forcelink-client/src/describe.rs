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
    /// `encoding` of the org's text (e.g. `UTF-8`).
    #[serde(default)]
    pub encoding: Option<String>,
    /// `maxBatchSize`: most records per SOAP API call.
    #[serde(default)]
    pub max_batch_size: Option<u32>,
    /// `sobjects`: every object the user can see.
    pub sobjects: Vec<GlobalSObject>,
}

/// One object of describeGlobal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalSObject {
    /// `name`: the object's API name (`Account`, `Invoice__c`).
    pub name: String,
    /// `label`: the singular display name.
    #[serde(default)]
    pub label: String,
    /// `labelPlural`: the plural display name.
    #[serde(default)]
    pub label_plural: String,
    /// `keyPrefix`: the first three characters of its record ids (`001` for Account); none for some objects.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// `custom`: a custom object (`__c`).
    #[serde(default)]
    pub custom: bool,
    /// `createable`: the user may create records.
    #[serde(default)]
    pub createable: bool,
    /// `updateable`: the user may update records.
    #[serde(default)]
    pub updateable: bool,
    /// `deletable`: the user may delete records.
    #[serde(default)]
    pub deletable: bool,
    /// `queryable`: SOQL can query it.
    #[serde(default)]
    pub queryable: bool,
    /// `searchable`: SOSL can search it.
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
    /// `name`: the object's API name.
    pub name: String,
    /// `label`: the singular display name.
    #[serde(default)]
    pub label: String,
    /// `labelPlural`: the plural display name.
    #[serde(default)]
    pub label_plural: String,
    /// `keyPrefix`: the first three characters of its record ids.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// `custom`: a custom object (`__c`).
    #[serde(default)]
    pub custom: bool,
    /// `createable`: the user may create records.
    #[serde(default)]
    pub createable: bool,
    /// `updateable`: the user may update records.
    #[serde(default)]
    pub updateable: bool,
    /// `deletable`: the user may delete records.
    #[serde(default)]
    pub deletable: bool,
    /// `queryable`: SOQL can query it.
    #[serde(default)]
    pub queryable: bool,
    /// `fields`: the fields the user can see.
    pub fields: Vec<FieldDescribe>,
    /// `childRelationships`, as sent.
    #[serde(default)]
    pub child_relationships: Vec<Value>,
    /// `recordTypeInfos`, as sent.
    #[serde(default)]
    pub record_type_infos: Vec<Value>,
    /// `urls`: the object's REST resources by name (`sobject`, `describe`, `rowTemplate`…).
    #[serde(default)]
    pub urls: BTreeMap<String, String>,
    /// Every other key, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl SObjectDescribe {
    /// The field named `name`, compared without case (as Salesforce does).
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// One field of a describe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    /// `name`: the field's API name (`Name`, `Amount__c`).
    pub name: String,
    /// `label`: the display name.
    #[serde(default)]
    pub label: String,
    /// `id`, `string`, `boolean`, `picklist`, `reference`, `datetime`, `currency`…
    #[serde(rename = "type")]
    pub field_type: String,
    /// `soapType`: the XML Schema type (`xsd:string`, `tns:ID`…).
    #[serde(default)]
    pub soap_type: Option<String>,
    /// `length`: most characters of a text field (0 for other types).
    #[serde(default)]
    pub length: u64,
    /// `byteLength`: most bytes of a text field.
    #[serde(default)]
    pub byte_length: Option<u64>,
    /// `precision`: most digits of a number field.
    #[serde(default)]
    pub precision: u64,
    /// `scale`: digits right of the decimal point.
    #[serde(default)]
    pub scale: u64,
    /// `digits`: most digits of an integer field.
    #[serde(default)]
    pub digits: u64,
    /// `nillable`: the field may be empty.
    #[serde(default)]
    pub nillable: bool,
    /// `createable`: the user may set it on create.
    #[serde(default)]
    pub createable: bool,
    /// `updateable`: the user may change it.
    #[serde(default)]
    pub updateable: bool,
    /// `defaultedOnCreate`: Salesforce fills it when a create leaves it out.
    #[serde(default)]
    pub defaulted_on_create: bool,
    /// `unique`: values are unique across records.
    #[serde(default)]
    pub unique: bool,
    /// `externalId`: an external id field (usable for upsert).
    #[serde(default)]
    pub external_id: bool,
    /// `idLookup`: usable to find records (upsert, search).
    #[serde(default)]
    pub id_lookup: bool,
    /// `calculated`: a formula or roll-up (read only).
    #[serde(default)]
    pub calculated: bool,
    /// `custom`: a custom field (`__c`).
    #[serde(default)]
    pub custom: bool,
    /// `picklistValues` of a picklist field.
    #[serde(default)]
    pub picklist_values: Vec<PicklistValue>,
    /// `referenceTo`: the objects a reference field points to.
    #[serde(default)]
    pub reference_to: Vec<String>,
    /// `relationshipName`: the name used in SOQL to follow a reference (`Account` for `AccountId`).
    #[serde(default)]
    pub relationship_name: Option<String>,
    /// `inlineHelpText`: the help text shown next to the field.
    #[serde(default)]
    pub inline_help_text: Option<String>,
    /// Every other key, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One picklist entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValue {
    /// `value`: the API value stored in records.
    pub value: String,
    /// `label`: the display name.
    #[serde(default)]
    pub label: Option<String>,
    /// `active`: offered to users. Defaults to true when absent.
    #[serde(default = "yes")]
    pub active: bool,
    /// `defaultValue`: the picklist's default.
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
