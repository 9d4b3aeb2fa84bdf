//! Running the seed's validation and duplicate rules on a record just written (inside the
//! write's savepoint, so a refusal undoes it). Salesforce runs custom validation after the
//! system checks (required fields, types, references) and duplicate rules after validation;
//! the playground keeps that order: the record code has already passed its own checks when it
//! calls [`check`].
//!
//! A validation rule's condition is SOQL compiled by the query engine as
//! `SELECT COUNT() FROM Object WHERE condition`, then narrowed to the record's id, so parent
//! paths (`Account.Industry`), date literals and every operator the query engine knows work.
//! Every failing rule is reported, in seed order, in one answer.

use rusqlite::params_from_iter;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use super::query::{self, Compiled};
use super::request::{Ctx, SfError};
use crate::schema::{DuplicateAction, DuplicateRule, Schema, ValidationRule};

/// Rows a duplicate rule reports at most (Salesforce shows a handful; UNCONFIRMED limit).
const MAX_MATCHES: usize = 20;

fn count_sql(schema: &Schema, rule: &ValidationRule, now: i64) -> Result<(String, Vec<Sql>), SfError> {
    let o = &schema.objects[rule.object];
    let soql = format!("SELECT COUNT() FROM {} WHERE {}", o.name, rule.condition);
    match query::compile(schema, &soql, false, now)? {
        Compiled::Count { sql, params } => Ok((sql, params)),
        _ => Err(SfError::internal("a validation condition did not compile to a count")),
    }
}

/// Compiles every validation condition once, so a bad one stops the playground at start-up
/// with the query error instead of failing writes later.
pub(crate) fn check_conditions(schema: &Schema, now: i64) -> Result<(), String> {
    for rule in &schema.rules.validation {
        if let Err(e) = count_sql(schema, rule, now) {
            let o = &schema.objects[rule.object].name;
            return Err(format!(
                "validation rule on {o} ({:?}): the condition is not valid SOQL: {}: {}",
                rule.condition,
                e.code,
                e.message.trim()
            ));
        }
    }
    Ok(())
}

/// Checks the stored record `id` of `object` against its rules.
pub(crate) fn check(ctx: &Ctx<'_>, object: usize, id: &str) -> Result<(), SfError> {
    let schema = ctx.db.schema.clone();
    let mut failed: Vec<SfError> = Vec::new();
    for rule in schema.rules.validation.iter().filter(|r| r.object == object) {
        let (sql, mut params) = count_sql(&schema, rule, ctx.now)?;
        params.push(Sql::Text(id.to_owned()));
        let n: i64 =
            ctx.db.conn.query_row(&format!("{sql} AND t0.\"Id\" = ?"), params_from_iter(params), |r| r.get(0))?;
        if n > 0 {
            failed.push(
                SfError::bad("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message.clone())
                    .with_fields(rule.field.iter().cloned().collect()),
            );
        }
    }
    if !failed.is_empty() {
        let mut first = failed.remove(0);
        first.more = failed;
        return Err(first);
    }
    for rule in schema.rules.duplicate.iter().filter(|r| r.object == object) {
        if rule.action == DuplicateAction::Allow && ctx.allow_duplicates {
            continue;
        }
        let matches = duplicates(ctx, rule, id)?;
        if !matches.is_empty() {
            let mut e = SfError::bad("DUPLICATES_DETECTED", rule.message.clone()).with_fields(vec![]);
            e.duplicate = Some(Box::new(duplicate_result(ctx, rule, &matches)));
            return Err(e);
        }
    }
    Ok(())
}

/// Ids of other live records with the same values in every field of the rule; none when one
/// of the record's values is blank (Salesforce's matching rules skip blank fields by default).
fn duplicates(ctx: &Ctx<'_>, rule: &DuplicateRule, id: &str) -> Result<Vec<String>, SfError> {
    let o = &ctx.db.schema.objects[rule.object];
    let Some(row) = ctx.db.row(rule.object, id)? else { return Ok(Vec::new()) };
    let mut filters = Vec::new();
    let mut params = Vec::new();
    for &fi in &rule.fields {
        match &row[fi] {
            Sql::Null => return Ok(Vec::new()),
            Sql::Text(t) if t.trim().is_empty() => return Ok(Vec::new()),
            v => {
                filters.push(format!("{} = ?", crate::store::quote(&o.fields[fi].name)));
                params.push(v.clone());
            }
        }
    }
    params.push(Sql::Text(id.to_owned()));
    let sql = format!(
        "SELECT \"Id\" FROM {} WHERE {} AND \"IsDeleted\" = 0 AND \"Id\" <> ? ORDER BY rid LIMIT {MAX_MATCHES}",
        o.table(),
        filters.join(" AND ")
    );
    let mut st = ctx.db.conn.prepare_cached(&sql)?;
    let ids = st.query_map(params_from_iter(params), |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
    Ok(ids)
}

/// The `duplicateResult` of a `DUPLICATES_DETECTED` answer, in the shape answers pasted from
/// real orgs show (`allowSave`, `duplicateRule`, `duplicateRuleEntityType`, `errorMessage`,
/// `matchResults[{entityType, errors, matchEngine, matchRecords[{additionalInformation,
/// fieldDiffs, matchConfidence, record{attributes, Id}}], rule, size, success}]`).
/// The playground's matches are exact: `ExactMatchEngine`, confidence 100.0.
fn duplicate_result(ctx: &Ctx<'_>, rule: &DuplicateRule, ids: &[String]) -> Value {
    let name = &ctx.db.schema.objects[rule.object].name;
    let v = &ctx.version.text;
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "additionalInformation": [],
                "fieldDiffs": [],
                "matchConfidence": 100.0,
                "record": {
                    "attributes": {"type": name, "url": format!("/services/data/v{v}/sobjects/{name}/{id}")},
                    "Id": id,
                },
            })
        })
        .collect();
    json!({
        "allowSave": rule.action == DuplicateAction::Allow,
        "duplicateRule": rule.name,
        "duplicateRuleEntityType": name,
        "errorMessage": rule.message,
        "matchResults": [{
            "entityType": name,
            "errors": [],
            "matchEngine": "ExactMatchEngine",
            "matchRecords": records,
            "rule": rule.matching_rule,
            "size": ids.len(),
            "success": true,
        }],
    })
}
