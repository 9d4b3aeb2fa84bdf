//! The seed's custom objects and custom fields: their seed shapes (`[[custom_objects]]`,
//! `[[custom_fields]]`) and how they become objects and fields.

use std::collections::HashMap;

use serde::Deserialize;

use super::SObject;
use super::field::{Field, FieldType, label_of, system_fields};

/// A custom object declared in the seed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomObjectSeed {
    /// API name, ending in `__c`.
    pub name: String,
    #[serde(default)]
    /// Label; derived from the name when left out.
    pub label: Option<String>,
    #[serde(default)]
    /// Plural label; the label plus `s` when left out.
    pub plural_label: Option<String>,
    /// Three characters; `a00`, `a01`, … in declaration order when left out.
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    /// The object's fields (besides Name and the system fields).
    pub fields: Vec<CustomFieldSeed>,
}

/// A custom field (`__c`) of a custom or standard object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldSeed {
    /// The object, for `[[custom_fields]]` on standard objects; ignored inside a custom object.
    #[serde(default)]
    pub object: String,
    /// API name, ending in `__c`.
    pub name: String,
    /// string, textarea, picklist, multipicklist, email, phone, url, boolean, int, double,
    /// currency, percent, date, datetime, reference.
    pub r#type: String,
    #[serde(default)]
    /// Label; derived from the name when left out.
    pub label: Option<String>,
    #[serde(default)]
    /// Length of text fields.
    pub length: Option<u32>,
    #[serde(default)]
    /// Digits of number fields.
    pub precision: Option<u32>,
    #[serde(default)]
    /// Decimal places of number fields.
    pub scale: Option<u32>,
    #[serde(default)]
    /// Required on create.
    pub required: bool,
    #[serde(default)]
    /// An external id (upsert key).
    pub external_id: bool,
    #[serde(default)]
    /// Values must be unique.
    pub unique: bool,
    #[serde(default)]
    /// Value on create when none is given.
    pub default: Option<String>,
    #[serde(default)]
    /// Values of picklist fields.
    pub picklist_values: Vec<String>,
    /// For `reference` fields: the parent object.
    #[serde(default)]
    pub reference_to: Option<String>,
    /// For `reference` fields: the child relationship name on the parent (`Invoices__r`).
    #[serde(default)]
    pub child_relationship: Option<String>,
}

fn custom_field(f: &CustomFieldSeed) -> Result<Field, String> {
    if !f.name.ends_with("__c") {
        return Err(format!("custom field {:?} must end with __c", f.name));
    }
    let ftype =
        FieldType::parse(&f.r#type).ok_or_else(|| format!("custom field {}: unknown type {:?}", f.name, f.r#type))?;
    let mut field = Field::new(&f.name, ftype);
    if let Some(l) = &f.label {
        field.label = l.clone();
    }
    if let Some(n) = f.length {
        field.length = n;
    }
    if let Some(p) = f.precision {
        field.precision = p;
    }
    if let Some(s) = f.scale {
        field.scale = s;
    }
    field.required = f.required;
    field.nillable = !f.required && ftype != FieldType::Boolean;
    field.external_id = f.external_id;
    field.unique = f.unique;
    field.default_value = f.default.clone();
    field.picklist = f.picklist_values.clone();
    if ftype == FieldType::Reference {
        let target =
            f.reference_to.clone().ok_or_else(|| format!("custom field {}: reference_to is required", f.name))?;
        field.reference_to = vec![target];
        field.relationship_name = Some(f.name.trim_end_matches("__c").to_owned() + "__r");
        field.child_relationship = f.child_relationship.clone();
    }
    Ok(field)
}

/// Appends the custom objects to `list` and the custom fields to their objects.
pub(super) fn add(
    list: &mut Vec<SObject>,
    objects: &[CustomObjectSeed],
    fields: &[CustomFieldSeed],
) -> Result<(), String> {
    for (i, o) in objects.iter().enumerate() {
        if !o.name.ends_with("__c") {
            return Err(format!("custom object {:?} must end with __c", o.name));
        }
        let mut all = system_fields(true);
        let mut name = Field::new("Name", FieldType::String);
        name.length = 80;
        name.name_field = true;
        all.push(name);
        for f in &o.fields {
            all.push(custom_field(f)?);
        }
        let label = o.label.clone().unwrap_or_else(|| label_of(&o.name));
        list.push(SObject {
            name: o.name.clone(),
            label_plural: o.plural_label.clone().unwrap_or_else(|| format!("{label}s")),
            label,
            key_prefix: o.key_prefix.clone().unwrap_or_else(|| format!("a{:02}", i)),
            custom: true,
            createable: true,
            updateable: true,
            deletable: true,
            fields: all,
            by_lower: HashMap::new(),
            children: Vec::new(),
        });
    }
    for f in fields {
        let obj = list
            .iter_mut()
            .find(|o| o.name.eq_ignore_ascii_case(&f.object))
            .ok_or_else(|| format!("custom field {}: no object {:?}", f.name, f.object))?;
        obj.fields.push(custom_field(f)?);
    }
    Ok(())
}
