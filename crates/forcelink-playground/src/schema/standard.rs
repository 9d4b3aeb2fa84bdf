//! The standard objects, read from `seed/standard-objects.toml` (embedded in the binary; the
//! file's header lists its keys). Parsed and checked once; a bad entry is refused with an error
//! naming the object and field.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;

use super::SObject;
use super::field::{Field, FieldType, system_fields};

/// The standard objects' metadata file, next to the default seed.
const STANDARD_OBJECTS_TOML: &str = include_str!("../../seed/standard-objects.toml");

/// The file, parsed and checked on first use (every schema build starts from it).
static STANDARD: LazyLock<Result<Vec<SObject>, String>> = LazyLock::new(|| parse(STANDARD_OBJECTS_TOML));

/// The standard objects, in declaration order.
pub(super) fn objects() -> Result<Vec<SObject>, String> {
    STANDARD.clone()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    picklist_sets: BTreeMap<String, Vec<String>>,
    objects: Vec<ObjectDef>,
}

/// Object-level permissions of a standard object.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Access {
    /// create, update, delete
    Full,
    /// read only through the API
    ReadOnly,
    /// create, update; no delete (User)
    NoDelete,
    /// create and delete, no update (assignments)
    CreateDelete,
    /// update only (UserLogin)
    UpdateOnly,
    /// update and delete (ContentDocument)
    UpdateDelete,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectDef {
    name: String,
    label: String,
    plural: String,
    prefix: String,
    access: Access,
    owned: bool,
    fields: Vec<FieldDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldDef {
    name: String,
    r#type: String,
    length: Option<u32>,
    precision: Option<u32>,
    scale: Option<u32>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    create_only: bool,
    #[serde(default)]
    calculated: bool,
    #[serde(default)]
    external_id: bool,
    #[serde(default)]
    unique: bool,
    #[serde(default)]
    name_field: bool,
    default: Option<String>,
    #[serde(default)]
    reference_to: Vec<String>,
    relationship: Option<String>,
    child_relationship: Option<String>,
    picklist: Option<Vec<String>>,
    picklist_set: Option<String>,
}

/// Parses and checks the standard objects' file. Errors name the object and field.
fn parse(text: &str) -> Result<Vec<SObject>, String> {
    let file: File = toml::from_str(text).map_err(|e| format!("standard objects: {e}"))?;
    file.objects
        .iter()
        .map(|o| object(o, &file.picklist_sets).map_err(|e| format!("standard objects: {}{e}", o.name)))
        .collect()
}

fn object(o: &ObjectDef, sets: &BTreeMap<String, Vec<String>>) -> Result<SObject, String> {
    let mut all = system_fields(o.owned);
    for f in &o.fields {
        all.push(field(f, sets).map_err(|e| format!(".{}: {e}", f.name))?);
    }
    let (createable, updateable, deletable) = match o.access {
        Access::Full => (true, true, true),
        Access::ReadOnly => (false, false, false),
        Access::NoDelete => (true, true, false),
        Access::CreateDelete => (true, false, true),
        Access::UpdateOnly => (false, true, false),
        Access::UpdateDelete => (false, true, true),
    };
    Ok(SObject {
        name: o.name.clone(),
        label: o.label.clone(),
        label_plural: o.plural.clone(),
        key_prefix: o.prefix.clone(),
        custom: false,
        createable,
        updateable,
        deletable,
        fields: all,
        by_lower: HashMap::new(),
        children: Vec::new(),
    })
}

fn field(d: &FieldDef, sets: &BTreeMap<String, Vec<String>>) -> Result<Field, String> {
    let ftype = FieldType::parse(&d.r#type).ok_or_else(|| format!("unknown type {:?}", d.r#type))?;
    let mut f = Field::new(&d.name, ftype);
    if let Some(n) = d.length {
        f.length = n;
    }
    match (d.precision, d.scale) {
        (Some(p), Some(s)) => (f.precision, f.scale) = (p, s),
        (None, None) => {}
        _ => return Err("precision and scale go together".into()),
    }
    f.required = d.required;
    if d.read_only || d.calculated {
        (f.createable, f.updateable) = (false, false);
    }
    if d.create_only {
        f.updateable = false;
    }
    f.calculated = d.calculated;
    f.external_id = d.external_id;
    f.unique = d.unique;
    f.name_field = d.name_field;
    f.default_value = d.default.clone();
    f.reference_to = d.reference_to.clone();
    f.relationship_name = d.relationship.clone();
    f.child_relationship = d.child_relationship.clone();
    if f.required || ftype == FieldType::Boolean {
        f.nillable = false;
    }
    f.picklist = match (&d.picklist, &d.picklist_set) {
        (Some(values), None) => values.clone(),
        (None, Some(set)) => sets.get(set).cloned().ok_or_else(|| format!("unknown picklist_set {set:?}"))?,
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => return Err("picklist and picklist_set are exclusive".into()),
    };
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_file_is_valid() {
        let objects = objects().unwrap();
        assert!(objects.iter().any(|o| o.name == "Account"));
    }

    #[test]
    fn a_malformed_file_is_refused_naming_the_object_and_field() {
        let text = STANDARD_OBJECTS_TOML.replacen(
            r#"{ name = "AccountNumber", type = "string""#,
            r#"{ name = "AccountNumber", type = "strng""#,
            1,
        );
        let err = parse(&text).err().unwrap();
        assert_eq!(err, r#"standard objects: Account.AccountNumber: unknown type "strng""#);
    }

    #[test]
    fn an_unknown_picklist_set_is_refused_naming_the_field() {
        let text = STANDARD_OBJECTS_TOML.replacen(r#"picklist_set = "industry""#, r#"picklist_set = "sectors""#, 1);
        let err = parse(&text).err().unwrap();
        assert_eq!(err, r#"standard objects: Account.Industry: unknown picklist_set "sectors""#);
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let text = STANDARD_OBJECTS_TOML.replacen("owned = true", "owned = true\nowner = true", 1);
        let err = parse(&text).err().unwrap();
        assert!(err.starts_with("standard objects: ") && err.contains("owner"), "{err}");
    }
}
