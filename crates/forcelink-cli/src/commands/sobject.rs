//! `forcelink sobject list|describe|get|create|update|upsert|delete`.
//!
//! Field values for create, update and upsert come from `--data` (JSON: inline, `@FILE`, or `-`
//! for standard input) and/or `FIELD=VALUE` arguments (a string) and `FIELD:=JSON` arguments (a
//! number, boolean, null…); arguments win over `--data`.

use std::io::Read;

use serde_json::{Map, Value, json};

use super::ConnectionArg;
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum SObjectCommand {
    /// The org's objects (describeGlobal).
    List {
        #[command(flatten)]
        conn: ConnectionArg,
        /// Only custom objects.
        #[arg(long)]
        custom: bool,
    },
    /// An object's fields: type, length, required, picklist values (describe).
    Describe {
        /// Object API name, e.g. Account.
        sobject: String,
        #[command(flatten)]
        conn: ConnectionArg,
    },
    /// One record by id.
    Get {
        sobject: String,
        id: String,
        #[command(flatten)]
        conn: ConnectionArg,
        /// Only these fields (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "FIELDS")]
        fields: Vec<String>,
    },
    /// Create a record; prints its id.
    Create {
        sobject: String,
        #[command(flatten)]
        values: Values,
        #[command(flatten)]
        conn: ConnectionArg,
    },
    /// Update fields of a record.
    Update {
        sobject: String,
        id: String,
        #[command(flatten)]
        values: Values,
        #[command(flatten)]
        conn: ConnectionArg,
    },
    /// Insert or update a record by an external id field.
    Upsert {
        sobject: String,
        /// The external id field, e.g. External_Id__c.
        field: String,
        /// Its value.
        value: String,
        #[command(flatten)]
        values: Values,
        /// Fail instead of inserting when no record matches.
        #[arg(long)]
        update_only: bool,
        #[command(flatten)]
        conn: ConnectionArg,
    },
    /// Delete a record.
    Delete {
        sobject: String,
        id: String,
        #[command(flatten)]
        conn: ConnectionArg,
    },
}

/// Field values of a record.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Values {
    /// FIELD=VALUE (a string) or FIELD:=JSON (number, boolean, null, object).
    #[arg(value_name = "FIELD=VALUE")]
    pub assignments: Vec<String>,
    /// The fields as a JSON object: inline, @FILE, or - for standard input.
    #[arg(long, value_name = "JSON")]
    pub data: Option<String>,
}

impl Values {
    /// The fields as one JSON object; refuses an empty one.
    pub fn to_object(&self) -> Result<Map<String, Value>, Failure> {
        let mut fields = match self.data.as_deref() {
            None => Map::new(),
            Some(src) => {
                let (text, origin) = read_data(src)?;
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(m)) => m,
                    Ok(_) => return Err(Failure::usage(format!("{origin} is not a JSON object of fields"))),
                    Err(e) => return Err(Failure::usage(format!("{origin} is not valid JSON: {e}"))),
                }
            }
        };
        for a in &self.assignments {
            let (field, value) = parse_assignment(a)?;
            fields.insert(field, value);
        }
        if fields.is_empty() {
            return Err(Failure::usage("no field values given").with_fix(
                "pass FIELD=VALUE arguments (FIELD:=JSON for numbers and booleans) or --data '{\"Name\": \"Acme\"}'",
            ));
        }
        Ok(fields)
    }
}

/// `--data` text: inline JSON, `@FILE`, or `-` (stdin). Returns the text and where it came from.
pub fn read_data(src: &str) -> Result<(String, String), Failure> {
    if src == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::usage(format!("reading --data from standard input: {e}")))?;
        Ok((s, "standard input".to_owned()))
    } else if let Some(path) = src.strip_prefix('@') {
        let text = std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("cannot read {path}: {e}")))?;
        Ok((text, path.to_owned()))
    } else {
        Ok((src.to_owned(), "--data".to_owned()))
    }
}

fn parse_assignment(a: &str) -> Result<(String, Value), Failure> {
    let bad = || {
        Failure::usage(format!("{a:?} is not FIELD=VALUE or FIELD:=JSON"))
            .with_fix("e.g. Name=Acme NumberOfEmployees:=120 IsActive:=true")
    };
    let eq = a.find('=').ok_or_else(bad)?;
    let (field, value) = (&a[..eq], &a[eq + 1..]);
    let (field, value) = match field.strip_suffix(':') {
        Some(f) => {
            let v = serde_json::from_str(value)
                .map_err(|e| Failure::usage(format!("the value of {f} is not JSON ({e}): {value}")))?;
            (f, v)
        }
        None => (field, Value::String(value.to_owned())),
    };
    if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad());
    }
    Ok((field.to_owned(), value))
}

pub async fn run(settings: &Settings, command: SObjectCommand) -> Result<Outcome, Failure> {
    match command {
        SObjectCommand::List { conn, custom } => {
            let client = conn.client(settings).await?;
            let global = client.describe_global().send().await?;
            let objects: Vec<_> = global.sobjects.into_iter().filter(|o| !custom || o.custom).collect();
            let mut rows = vec![[
                "NAME".to_owned(),
                "LABEL".to_owned(),
                "PREFIX".to_owned(),
                "QUERY".to_owned(),
                "CREATE".to_owned(),
            ]];
            for o in &objects {
                rows.push([
                    o.name.clone(),
                    o.label.clone(),
                    o.key_prefix.clone().unwrap_or_default(),
                    yes_no(o.queryable),
                    yes_no(o.createable),
                ]);
            }
            let result: Vec<Value> = objects
                .iter()
                .map(|o| {
                    json!({
                        "name": o.name, "label": o.label, "key_prefix": o.key_prefix, "custom": o.custom,
                        "queryable": o.queryable, "createable": o.createable, "updateable": o.updateable,
                        "deletable": o.deletable, "searchable": o.searchable,
                    })
                })
                .collect();
            Ok(Outcome::new(json!(result), output::table(&rows)))
        }
        SObjectCommand::Describe { sobject, conn } => {
            let client = conn.client(settings).await?;
            let d = client.sobject(&sobject)?.describe().send().await?;
            let mut rows = vec![[
                "FIELD".to_owned(),
                "TYPE".to_owned(),
                "LENGTH".to_owned(),
                "REQUIRED".to_owned(),
                "VALUES / REFERENCES".to_owned(),
            ]];
            for f in &d.fields {
                let required = f.createable && !f.nillable && !f.defaulted_on_create;
                let extra = if !f.picklist_values.is_empty() {
                    let v: Vec<&str> =
                        f.picklist_values.iter().filter(|p| p.active).map(|p| p.value.as_str()).collect();
                    v.join(", ")
                } else {
                    f.reference_to.join(", ")
                };
                rows.push([
                    f.name.clone(),
                    f.field_type.clone(),
                    if f.length > 0 { f.length.to_string() } else { String::new() },
                    if required { "yes".to_owned() } else { String::new() },
                    extra,
                ]);
            }
            let human = format!("{} ({}), {} fields\n{}", d.name, d.label, d.fields.len(), output::table(&rows));
            let value = serde_json::to_value(&*d).map_err(|e| Failure::failed(e.to_string()))?;
            Ok(Outcome::new(value, human))
        }
        SObjectCommand::Get { sobject, id, conn, fields } => {
            let client = conn.client(settings).await?;
            let mut b = client.sobject(&sobject)?.retrieve(&id)?;
            if !fields.is_empty() {
                b = b.fields(fields.iter().map(|f| f.trim()))?;
            }
            let record = b.send().await?;
            let mut rows = Vec::new();
            if let Value::Object(m) = &record {
                for (k, v) in m {
                    if k != "attributes" {
                        rows.push([k.clone(), plain(v)]);
                    }
                }
            }
            Ok(Outcome::new(record, output::table(&rows)))
        }
        SObjectCommand::Create { sobject, values, conn } => {
            let fields = values.to_object()?;
            let client = conn.client(settings).await?;
            let created = client.sobject(&sobject)?.create(&fields).send().await?;
            Ok(Outcome::new(
                json!({ "id": created.id.as_str(), "sobject": sobject, "created": true }),
                format!("{}\n", created.id.as_str()),
            ))
        }
        SObjectCommand::Update { sobject, id, values, conn } => {
            let fields = values.to_object()?;
            let client = conn.client(settings).await?;
            client.sobject(&sobject)?.update(&id, &fields)?.send().await?;
            let names: Vec<&String> = fields.keys().collect();
            Ok(Outcome::new(
                json!({ "id": id, "sobject": sobject, "fields": names }),
                format!("updated {sobject} {id}\n"),
            ))
        }
        SObjectCommand::Upsert { sobject, field, value, values, update_only, conn } => {
            let fields = values.to_object()?;
            let client = conn.client(settings).await?;
            let done =
                client.sobject(&sobject)?.upsert(&field, &value, &fields)?.update_only(update_only).send().await?;
            let what = if done.created { "created" } else { "updated" };
            Ok(Outcome::new(
                json!({ "id": done.id, "sobject": sobject, "created": done.created }),
                format!("{what} {sobject} {}\n", done.id.as_deref().unwrap_or(&format!("{field}={value}"))),
            ))
        }
        SObjectCommand::Delete { sobject, id, conn } => {
            let client = conn.client(settings).await?;
            client.sobject(&sobject)?.delete(&id)?.send().await?;
            Ok(Outcome::new(
                json!({ "id": id, "sobject": sobject, "deleted": true }),
                format!("deleted {sobject} {id}\n"),
            ))
        }
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "" }.to_owned()
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_are_strings_or_json() {
        assert_eq!(parse_assignment("Name=a=b").ok(), Some(("Name".to_owned(), json!("a=b"))));
        assert_eq!(parse_assignment("Employees:=12").ok(), Some(("Employees".to_owned(), json!(12))));
        assert_eq!(parse_assignment("Active__c:=true").ok(), Some(("Active__c".to_owned(), json!(true))));
        assert!(parse_assignment("Name").is_err());
        assert!(parse_assignment("=x").is_err());
        assert!(parse_assignment("Bad Field=x").is_err());
        assert!(parse_assignment("N:=not json").is_err());
    }

    #[test]
    fn empty_values_are_refused() {
        assert!(Values::default().to_object().is_err());
        let v =
            Values { assignments: vec!["Name=x".to_owned()], data: Some("{\"Name\":\"y\",\"Site\":\"z\"}".to_owned()) };
        let m = v.to_object().unwrap_or_default();
        assert_eq!(m["Name"], "x");
        assert_eq!(m["Site"], "z");
        let bad = Values { assignments: vec![], data: Some("[1]".to_owned()) };
        assert!(bad.to_object().is_err());
    }
}
