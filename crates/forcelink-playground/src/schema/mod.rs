//! The org's metadata: which sObjects exist, their fields, types, relationships and key
//! prefixes. Standard objects come from `seed/standard-objects.toml` (next to the default
//! seed); custom objects and fields (`__c`) from the seed file. Shapes follow Salesforce's
//! describe (wire reference §6.2); values are realistic, not exhaustive.
//!
//! - `field`: field types, field metadata and describe entries, system fields.
//! - `standard`: the standard objects' file, parsed and checked.
//! - `custom`: the seed's custom objects and fields (`[[custom_objects]]`, `[[custom_fields]]`).
//! - `rules`: the seed's validation and duplicate rules, checked against the objects.

mod custom;
mod field;
mod rules;
mod standard;

use std::collections::HashMap;

use serde_json::{Value, json};

pub use custom::{CustomFieldSeed, CustomObjectSeed};
pub(crate) use field::{Field, FieldType, Storage};
pub use rules::{DuplicateAction, DuplicateRuleSeed, ValidationRuleSeed};
pub(crate) use rules::{DuplicateRule, Rules, ValidationRule};

#[derive(Debug, Clone)]
pub(crate) struct ChildRelationship {
    pub(crate) name: String,
    pub(crate) child: usize,
    pub(crate) field: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct SObject {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) label_plural: String,
    pub(crate) key_prefix: String,
    pub(crate) custom: bool,
    pub(crate) createable: bool,
    pub(crate) updateable: bool,
    pub(crate) deletable: bool,
    pub(crate) fields: Vec<Field>,
    by_lower: HashMap<String, usize>,
    pub(crate) children: Vec<ChildRelationship>,
}

impl SObject {
    pub(crate) fn field(&self, name: &str) -> Option<&Field> {
        self.field_index(name).map(|i| &self.fields[i])
    }
    pub(crate) fn field_index(&self, name: &str) -> Option<usize> {
        self.by_lower.get(&name.to_ascii_lowercase()).copied()
    }
    /// The reference field whose relationship name is `rel` (case-insensitive).
    pub(crate) fn relationship(&self, rel: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(rel)))
    }
    pub(crate) fn child(&self, rel: &str) -> Option<&ChildRelationship> {
        self.children.iter().find(|c| c.name.eq_ignore_ascii_case(rel))
    }
    pub(crate) fn name_field(&self) -> Option<&Field> {
        self.fields.iter().find(|f| f.name_field)
    }
    pub(crate) fn has_owner(&self) -> bool {
        self.field_index("OwnerId").is_some()
    }
    pub(crate) fn table(&self) -> String {
        format!("\"o_{}\"", self.name)
    }

    fn urls(&self, v: &str) -> Value {
        let base = format!("/services/data/v{v}/sobjects/{}", self.name);
        json!({"sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}")})
    }

    /// One entry of describeGlobal (also `objectDescribe` of `GET /sobjects/{T}`).
    pub(crate) fn global_entry(&self, v: &str) -> Value {
        json!({
            "activateable": false,
            "createable": self.createable,
            "custom": self.custom,
            "customSetting": false,
            "deletable": self.deletable,
            "deprecatedAndHidden": false,
            "feedEnabled": !self.custom && self.has_owner(),
            "hasSubtypes": false,
            "isSubtype": false,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": true,
            "mergeable": matches!(self.name.as_str(), "Account" | "Contact" | "Lead" | "Case"),
            "mruEnabled": true,
            "name": self.name,
            "queryable": true,
            "replicateable": true,
            "retrieveable": true,
            "searchable": self.name_field().is_some(),
            "triggerable": true,
            "undeletable": self.deletable,
            "updateable": self.updateable,
            "urls": self.urls(v),
        })
    }

    /// The full describe; `instance` is the org's instance URL (the Classic UI templates are
    /// absolute URLs on it, as Salesforce answers them).
    pub(crate) fn describe(&self, schema: &Schema, v: &str, instance: &str) -> Value {
        let mut d = self.global_entry(v);
        let mut urls = self.urls(v);
        if let Some(u) = urls.as_object_mut() {
            u.insert("uiDetailTemplate".into(), json!(format!("{instance}/{{ID}}")));
            u.insert("uiEditTemplate".into(), json!(format!("{instance}/{{ID}}/e")));
            u.insert("uiNewRecord".into(), json!(format!("{instance}/{}/e", self.key_prefix)));
        }
        if let Some(o) = d.as_object_mut() {
            o.insert("urls".into(), urls);
            o.insert("fields".into(), Value::Array(self.fields.iter().map(Field::describe).collect()));
            o.insert(
                "childRelationships".into(),
                Value::Array(
                    self.children
                        .iter()
                        .map(|c| {
                            let child = &schema.objects[c.child];
                            json!({
                                "cascadeDelete": false,
                                "childSObject": child.name,
                                "deprecatedAndHidden": false,
                                "field": child.fields[c.field].name,
                                "junctionIdListNames": [],
                                "junctionReferenceTo": [],
                                "relationshipName": c.name,
                                "restrictedDelete": false,
                            })
                        })
                        .collect(),
                ),
            );
            o.insert(
                "recordTypeInfos".into(),
                json!([{"active": true, "available": true, "defaultRecordTypeMapping": true, "developerName": "Master",
                        "master": true, "name": "Master", "recordTypeId": "012000000000000AAA",
                        "urls": {"layout": format!("/services/data/v{v}/sobjects/{}/describe/layouts/012000000000000AAA", self.name)}}]),
            );
            o.insert("compactLayoutable".into(), json!(true));
            o.insert("searchLayoutable".into(), json!(true));
            o.insert("listviewable".into(), Value::Null);
            o.insert("lookupLayoutable".into(), Value::Null);
            o.insert("networkScopeFieldName".into(), Value::Null);
            o.insert("supportedScopes".into(), json!([{"label": "All", "name": "everything"}]));
        }
        d
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub(crate) objects: Vec<SObject>,
    by_lower: HashMap<String, usize>,
    by_prefix: HashMap<String, usize>,
    /// The seed's validation and duplicate rules (empty unless [`Schema::with_rules`] adds some).
    pub(crate) rules: Rules,
}

impl Schema {
    /// The standard objects plus the seed's custom objects and fields.
    pub(crate) fn build(objects: &[CustomObjectSeed], fields: &[CustomFieldSeed]) -> Result<Self, String> {
        let mut list = standard::objects()?;
        custom::add(&mut list, objects, fields)?;
        let mut schema =
            Self { objects: list, by_lower: HashMap::new(), by_prefix: HashMap::new(), rules: Rules::default() };
        schema.index()?;
        Ok(schema)
    }

    fn index(&mut self) -> Result<(), String> {
        for (i, o) in self.objects.iter_mut().enumerate() {
            if o.key_prefix.len() != 3 || !o.key_prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("{}: key prefix {:?} must be 3 letters or digits", o.name, o.key_prefix));
            }
            if self.by_lower.insert(o.name.to_ascii_lowercase(), i).is_some() {
                return Err(format!("object {} is defined twice", o.name));
            }
            if self.by_prefix.insert(o.key_prefix.clone(), i).is_some() {
                return Err(format!("{}: key prefix {} is used twice", o.name, o.key_prefix));
            }
            for (j, f) in o.fields.iter().enumerate() {
                if o.by_lower.insert(f.name.to_ascii_lowercase(), j).is_some() {
                    return Err(format!("{}.{} is defined twice", o.name, f.name));
                }
            }
        }
        let mut children = Vec::new();
        for (ci, o) in self.objects.iter().enumerate() {
            for (fi, f) in o.fields.iter().enumerate() {
                for target in &f.reference_to {
                    if !self.by_lower.contains_key(&target.to_ascii_lowercase()) {
                        return Err(format!("{}.{} refers to unknown object {target}", o.name, f.name));
                    }
                }
                if let (Some(rel), Some(target)) = (&f.child_relationship, f.reference_to.first()) {
                    let pi = self.by_lower[&target.to_ascii_lowercase()];
                    children.push((pi, ChildRelationship { name: rel.clone(), child: ci, field: fi }));
                }
            }
        }
        for (pi, c) in children {
            self.objects[pi].children.push(c);
        }
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&SObject> {
        self.index_of(name).map(|i| &self.objects[i])
    }
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.by_lower.get(&name.to_ascii_lowercase()).copied()
    }
    /// The object an id belongs to, by its key prefix.
    pub(crate) fn by_id(&self, id: &str) -> Option<&SObject> {
        id.get(..3).and_then(|p| self.by_prefix.get(p)).map(|&i| &self.objects[i])
    }

    pub(crate) fn describe_global(&self, v: &str) -> Value {
        json!({
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": self.objects.iter().map(|o| o.global_entry(v)).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::field::label_of;
    use super::*;

    #[test]
    fn standard_objects_build_with_relationships() {
        let s = Schema::build(&[], &[]).unwrap();
        let account = s.get("account").unwrap();
        assert_eq!(account.key_prefix, "001");
        assert!(account.child("Contacts").is_some());
        let contact = s.get("Contact").unwrap();
        assert_eq!(contact.relationship("account").unwrap().name, "AccountId");
        let lead = s.get("Lead").unwrap();
        assert_eq!(lead.field("Status").unwrap().default_value.as_deref(), Some("Open - Not Contacted"));
        assert!(lead.field("Company").unwrap().required);
        assert_eq!(s.by_id("005000000000000").unwrap().name, "User");
        assert_eq!(label_of("BillingCity"), "Billing City");
        assert_eq!(label_of("AccountId"), "Account ID");
    }
}
