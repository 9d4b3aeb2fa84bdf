//! Field metadata: `FieldType` (with its SQLite storage and SOAP type), `Field` and its describe
//! entry, the system fields every object has, and labels derived from API names.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Id,
    String,
    TextArea,
    Picklist,
    MultiPicklist,
    Email,
    Phone,
    Url,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    DateTime,
    Reference,
    Base64,
}

/// How a value is kept in SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    Text,
    Integer,
    Real,
    Blob,
}

impl FieldType {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "id" => Self::Id,
            "string" | "text" => Self::String,
            "textarea" => Self::TextArea,
            "picklist" => Self::Picklist,
            "multipicklist" => Self::MultiPicklist,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "url" => Self::Url,
            "boolean" | "checkbox" => Self::Boolean,
            "int" | "integer" => Self::Int,
            "double" | "number" => Self::Double,
            "currency" => Self::Currency,
            "percent" => Self::Percent,
            "date" => Self::Date,
            "datetime" => Self::DateTime,
            "reference" | "lookup" => Self::Reference,
            "base64" => Self::Base64,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::String => "string",
            Self::TextArea => "textarea",
            Self::Picklist => "picklist",
            Self::MultiPicklist => "multipicklist",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Url => "url",
            Self::Boolean => "boolean",
            Self::Int => "int",
            Self::Double => "double",
            Self::Currency => "currency",
            Self::Percent => "percent",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Reference => "reference",
            Self::Base64 => "base64",
        }
    }

    fn soap_type(self) -> &'static str {
        match self {
            Self::Id | Self::Reference => "tns:ID",
            Self::Boolean => "xsd:boolean",
            Self::Int => "xsd:int",
            Self::Double | Self::Currency | Self::Percent => "xsd:double",
            Self::Date => "xsd:date",
            Self::DateTime => "xsd:dateTime",
            Self::Base64 => "xsd:base64Binary",
            _ => "xsd:string",
        }
    }

    pub(crate) fn storage(self) -> Storage {
        match self {
            Self::Boolean | Self::Int => Storage::Integer,
            Self::Double | Self::Currency | Self::Percent => Storage::Real,
            Self::Base64 => Storage::Blob,
            _ => Storage::Text,
        }
    }

    pub(crate) fn is_textual(self) -> bool {
        self.storage() == Storage::Text
    }

    fn default_length(self) -> u32 {
        match self {
            Self::Id | Self::Reference => 18,
            Self::String | Self::Picklist | Self::Url => 255,
            Self::TextArea => 32000,
            Self::MultiPicklist => 4099,
            Self::Email => 80,
            Self::Phone => 40,
            Self::Base64 => 52_428_800,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) ftype: FieldType,
    pub(crate) length: u32,
    pub(crate) precision: u32,
    pub(crate) scale: u32,
    pub(crate) nillable: bool,
    pub(crate) createable: bool,
    pub(crate) updateable: bool,
    pub(crate) required: bool,
    pub(crate) external_id: bool,
    pub(crate) unique: bool,
    pub(crate) name_field: bool,
    pub(crate) calculated: bool,
    pub(crate) custom: bool,
    pub(crate) default_value: Option<String>,
    pub(crate) reference_to: Vec<String>,
    pub(crate) relationship_name: Option<String>,
    pub(crate) child_relationship: Option<String>,
    pub(crate) picklist: Vec<String>,
}

impl Field {
    pub(super) fn new(name: &str, ftype: FieldType) -> Self {
        Self {
            name: name.to_owned(),
            label: label_of(name),
            ftype,
            length: ftype.default_length(),
            precision: if matches!(ftype, FieldType::Currency | FieldType::Double | FieldType::Percent) {
                18
            } else {
                0
            },
            scale: if ftype == FieldType::Currency { 2 } else { 0 },
            nillable: true,
            createable: true,
            updateable: true,
            required: false,
            external_id: false,
            unique: false,
            name_field: false,
            calculated: false,
            custom: name.ends_with("__c"),
            default_value: None,
            reference_to: Vec::new(),
            relationship_name: None,
            child_relationship: None,
            picklist: Vec::new(),
        }
    }

    /// Fields addressed by value lookups: Id, external ids, and idLookup fields such as
    /// `Username`.
    pub(crate) fn id_lookup(&self) -> bool {
        self.ftype == FieldType::Id || self.external_id || self.name == "Username" || self.name == "Email"
    }

    pub(crate) fn describe(&self) -> Value {
        let defaulted = self.default_value.is_some() || self.ftype == FieldType::Id || self.ftype == FieldType::Boolean;
        let byte_length = if self.ftype.is_textual() { self.length * 3 } else { 0 };
        let byte_length = if matches!(self.ftype, FieldType::Id | FieldType::Reference) { 18 } else { byte_length };
        json!({
            "aggregatable": self.ftype != FieldType::TextArea,
            "autoNumber": false,
            "byteLength": byte_length,
            "calculated": self.calculated,
            "calculatedFormula": null,
            "caseSensitive": false,
            "controllerName": null,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": match (&self.default_value, self.ftype) {
                (Some(v), FieldType::Boolean) => json!(v == "true"),
                (Some(v), _) => json!(v),
                (None, FieldType::Boolean) => json!(false),
                (None, _) => Value::Null,
            },
            "defaultValueFormula": null,
            "defaultedOnCreate": defaulted,
            "dependentPicklist": false,
            "deprecatedAndHidden": false,
            "digits": if self.ftype == FieldType::Int { 9 } else { 0 },
            "externalId": self.external_id,
            "filterable": !matches!(self.ftype, FieldType::TextArea | FieldType::Base64),
            "groupable": !matches!(self.ftype, FieldType::TextArea | FieldType::Base64 | FieldType::Double | FieldType::Currency | FieldType::Percent | FieldType::DateTime),
            "htmlFormatted": false,
            "idLookup": self.id_lookup(),
            "inlineHelpText": null,
            "label": self.label,
            "length": if self.ftype.is_textual() { self.length } else { 0 },
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": self.reference_to.len() > 1,
            "nillable": self.nillable,
            "picklistValues": self.picklist.iter().map(|v| json!({
                "active": true,
                "defaultValue": self.default_value.as_deref() == Some(v.as_str()),
                "label": v,
                "validFor": null,
                "value": v,
            })).collect::<Vec<_>>(),
            "precision": self.precision,
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "relationshipOrder": null,
            "restrictedPicklist": false,
            "scale": self.scale,
            "soapType": self.ftype.soap_type(),
            "sortable": !matches!(self.ftype, FieldType::TextArea | FieldType::Base64 | FieldType::MultiPicklist),
            "type": self.ftype.name(),
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": false,
        })
    }
}

/// "BillingCity" → "Billing City"; "Amount__c" → "Amount".
pub(super) fn label_of(name: &str) -> String {
    // Salesforce labels reference fields "Account ID".
    if let Some(base) = name.strip_suffix("Id").filter(|b| !b.is_empty() && !name.ends_with("__c")) {
        return format!("{} ID", label_of(base));
    }
    let base = name.trim_end_matches("__c");
    let base = if base.is_empty() { name } else { base };
    let mut out = String::new();
    let mut prev_lower = false;
    for c in base.chars() {
        if c == '_' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

/// Id, IsDeleted, OwnerId (for owned objects) and the audit fields, in describe order.
pub(super) fn system_fields(owned: bool) -> Vec<Field> {
    let mut out = Vec::new();
    let mut id = Field::new("Id", FieldType::Id);
    id.label = "Record ID".into();
    (id.nillable, id.createable, id.updateable) = (false, false, false);
    out.push(id);
    let mut deleted = Field::new("IsDeleted", FieldType::Boolean);
    (deleted.createable, deleted.updateable, deleted.nillable) = (false, false, false);
    out.push(deleted);
    if owned {
        let mut owner = Field::new("OwnerId", FieldType::Reference);
        owner.label = "Owner ID".into();
        owner.reference_to = vec!["User".into()];
        owner.relationship_name = Some("Owner".into());
        owner.nillable = false;
        owner.default_value = None;
        out.push(owner);
    }
    for (name, ftype, reference) in [
        ("CreatedDate", FieldType::DateTime, false),
        ("CreatedById", FieldType::Reference, true),
        ("LastModifiedDate", FieldType::DateTime, false),
        ("LastModifiedById", FieldType::Reference, true),
        ("SystemModstamp", FieldType::DateTime, false),
    ] {
        let mut f = Field::new(name, ftype);
        (f.createable, f.updateable, f.nillable) = (false, false, false);
        if reference {
            f.reference_to = vec!["User".into()];
            f.relationship_name = Some(name.trim_end_matches("Id").to_owned());
        }
        out.push(f);
    }
    out
}
