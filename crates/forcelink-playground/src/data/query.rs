//! SOQL execution: a parsed query is compiled to one SQLite statement (parent paths become
//! LEFT JOINs, WHERE becomes SQL with bound parameters), pages are read straight from SQLite
//! into JSON bytes, and child subqueries run once per page for all the page's parents.
//!
//! Pages: a query without ORDER BY/OFFSET pages by rowid (keyset, constant cost per page);
//! otherwise by OFFSET over a deterministic order (the keys plus rowid). The locator in
//! `nextRecordsUrl` (`/services/data/vXX.X/query/01g…-2000`) names a server-side cursor and the
//! number of records already returned, so it works under any API version and on `query` or
//! `queryAll`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::StatusCode;
use rusqlite::params_from_iter;
use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::{Value, json};

use super::api::{Ctx, Reply};
use super::records::{ApiError, normalize_id};
use super::soql::{self, Agg, Cond, Item, Lit, Op, Path, Query};
use crate::civil::{self, DAY_MS};
use crate::schema::{FieldType, Schema};
use crate::store::locators::{Cursor, Locators};
use crate::store::plan::{ChildPlan, Plan, Shape};
use crate::store::{Db, quote};

/// Salesforce's default and largest query batch; the smallest allowed is 200.
pub(crate) const DEFAULT_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;
/// How long an idle locator lives (Salesforce: 15 minutes of inactivity).
const LOCATOR_IDLE_MS: i64 = 15 * 60 * 1000;
/// Open locators kept at most; the least recently used goes first.
const MAX_LOCATORS: usize = 2000;

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::bad("MALFORMED_QUERY", message)
}

fn no_column(field: &str, object: &str) -> ApiError {
    ApiError::bad(
        "INVALID_FIELD",
        format!(
            "No such column '{field}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}

fn no_relationship(rel: &str) -> ApiError {
    ApiError::bad(
        "INVALID_FIELD",
        format!(
            "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}

pub(crate) fn invalid_type(object: &str) -> ApiError {
    ApiError::bad("INVALID_TYPE", format!("sObject type '{object}' is not supported."))
}

/// A resolved field path: table alias, object, field index, and the relationship hops
/// (relationship name, target object, alias) that lead to it.
type Resolved = (String, usize, usize, Vec<(String, usize, String)>);

struct Compiler<'a> {
    schema: &'a Schema,
    root: usize,
    alias: Option<String>,
    joins: Vec<(String, String)>,
    join_sql: String,
    cols: Vec<String>,
    params: Vec<Sql>,
    now: i64,
    prefix: String,
}

impl<'a> Compiler<'a> {
    fn new(schema: &'a Schema, root: usize, alias: Option<String>, now: i64, prefix: &str) -> Self {
        Self {
            schema,
            root,
            alias,
            joins: Vec::new(),
            join_sql: String::new(),
            cols: vec![format!("{prefix}0.rid"), format!("{prefix}0.\"Id\"")],
            params: Vec::new(),
            now,
            prefix: prefix.to_owned(),
        }
    }

    /// Resolves a field path to (table alias, object, field index, relationship hops).
    fn resolve(&mut self, path: &Path) -> Result<Resolved, ApiError> {
        let mut parts: &[String] = &path.parts;
        let root = &self.schema.objects[self.root];
        if parts.len() > 1
            && (self.alias.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&parts[0]))
                || (parts[0].eq_ignore_ascii_case(&root.name) && root.relationship(&parts[0]).is_none()))
        {
            parts = &parts[1..];
        }
        let mut object = self.root;
        let mut alias = format!("{}0", self.prefix);
        let mut key = String::new();
        let mut hops = Vec::new();
        for rel in &parts[..parts.len() - 1] {
            let o = &self.schema.objects[object];
            let f = o.relationship(rel).ok_or_else(|| no_relationship(rel))?;
            let target =
                f.reference_to.first().and_then(|t| self.schema.index_of(t)).ok_or_else(|| no_relationship(rel))?;
            key.push('.');
            key.push_str(&rel.to_ascii_lowercase());
            let next_alias = match self.joins.iter().find(|(k, _)| *k == key) {
                Some((_, a)) => a.clone(),
                None => {
                    let a = format!("{}{}", self.prefix, self.joins.len() + 1);
                    let _ = write!(
                        self.join_sql,
                        " LEFT JOIN {} {a} ON {a}.\"Id\" = {alias}.{}",
                        self.schema.objects[target].table(),
                        quote(&f.name)
                    );
                    self.joins.push((key.clone(), a.clone()));
                    a
                }
            };
            hops.push((f.relationship_name.clone().unwrap_or_else(|| rel.clone()), target, next_alias.clone()));
            alias = next_alias;
            object = target;
        }
        let last = &parts[parts.len() - 1];
        let o = &self.schema.objects[object];
        let fi = o.field_index(last).ok_or_else(|| no_column(last, &o.name))?;
        Ok((alias, object, fi, hops))
    }

    fn column(&mut self, sql: String) -> usize {
        self.cols.push(sql);
        self.cols.len() - 1
    }

    /// Adds a selected field to the output tree.
    fn select_field(&mut self, path: &Path, items: &mut Vec<Shape>) -> Result<(), ApiError> {
        let (alias, object, fi, hops) = self.resolve(path)?;
        let mut level = items;
        for (rel, target, a) in hops {
            let pos = level.iter().position(|s| matches!(s, Shape::Parent { name, .. } if *name == rel));
            let pos = match pos {
                Some(p) => p,
                None => {
                    let id_col = self.column(format!("{a}.\"Id\""));
                    level.push(Shape::Parent {
                        name: rel.clone(),
                        object: self.schema.objects[target].name.clone(),
                        id_col,
                        items: Vec::new(),
                    });
                    level.len() - 1
                }
            };
            let Shape::Parent { items, .. } = &mut level[pos] else { return Err(ApiError::internal("shape")) };
            level = items;
        }
        let f = &self.schema.objects[object].fields[fi];
        if level.iter().any(|s| matches!(s, Shape::Field { name, .. } if *name == f.name)) {
            return Ok(());
        }
        let col = self.column(format!("{alias}.{}", quote(&f.name)));
        level.push(Shape::Field { name: f.name.clone(), ftype: f.ftype, col });
        Ok(())
    }

    fn bind(&mut self, v: Sql) -> String {
        self.params.push(v);
        "?".to_owned()
    }

    fn cond(&mut self, c: &Cond) -> Result<String, ApiError> {
        Ok(match c {
            Cond::And(parts) => {
                let s: Result<Vec<String>, ApiError> = parts.iter().map(|p| self.cond(p)).collect();
                format!("({})", s?.join(" AND "))
            }
            Cond::Or(parts) => {
                let s: Result<Vec<String>, ApiError> = parts.iter().map(|p| self.cond(p)).collect();
                format!("({})", s?.join(" OR "))
            }
            Cond::Not(inner) => format!("(NOT {})", self.cond(inner)?),
            Cond::Cmp(path, op, lit) => self.compare(path, *op, lit)?,
            Cond::In(path, negated, lits) => {
                let (alias, object, fi, _) = self.resolve(path)?;
                let f = self.schema.objects[object].fields[fi].clone();
                let col = format!("{alias}.{}", quote(&f.name));
                let has_null = lits.contains(&Lit::Null);
                let mut marks = Vec::new();
                for l in lits.iter().filter(|l| **l != Lit::Null) {
                    let v = literal(&f, l, Op::Eq)?;
                    marks.push(self.bind(v));
                }
                let list = if marks.is_empty() { "0".to_owned() } else { format!("{col} IN ({})", marks.join(",")) };
                match (negated, has_null) {
                    (false, false) => format!("({col} IS NOT NULL AND {list})"),
                    (false, true) => format!("({col} IS NULL OR {list})"),
                    // UNCONFIRMED: like `!=`, NOT IN keeps rows whose value is null.
                    (true, false) => format!("({col} IS NULL OR NOT ({list}))"),
                    (true, true) => format!("({col} IS NOT NULL AND NOT ({list}))"),
                }
            }
            Cond::Includes(path, excludes, values) => {
                let (alias, object, fi, _) = self.resolve(path)?;
                let f = &self.schema.objects[object].fields[fi];
                if f.ftype != FieldType::MultiPicklist {
                    return Err(ApiError::bad(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        format!("invalid operator on multipicklist field: {} is not a multipicklist", f.name),
                    ));
                }
                let col = format!("{alias}.{}", quote(&f.name));
                let mut any = Vec::new();
                for v in values {
                    let mut all = Vec::new();
                    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                        let m = self.bind(Sql::Text(part.to_lowercase()));
                        all.push(format!("instr(';' || lower({col}) || ';', ';' || {m} || ';') > 0"));
                    }
                    if !all.is_empty() {
                        any.push(format!("({})", all.join(" AND ")));
                    }
                }
                let inc = if any.is_empty() { "0".to_owned() } else { format!("({})", any.join(" OR ")) };
                if *excludes {
                    format!("({col} IS NULL OR NOT {inc})")
                } else {
                    format!("({col} IS NOT NULL AND {inc})")
                }
            }
        })
    }

    fn compare(&mut self, path: &Path, op: Op, lit: &Lit) -> Result<String, ApiError> {
        let (alias, object, fi, _) = self.resolve(path)?;
        let f = self.schema.objects[object].fields[fi].clone();
        let col = format!("{alias}.{}", quote(&f.name));
        if *lit == Lit::Null {
            return match op {
                Op::Eq => Ok(format!("{col} IS NULL")),
                Op::Ne => Ok(format!("{col} IS NOT NULL")),
                _ => Err(malformed(format!("invalid operator for null on field {}", f.name))),
            };
        }
        if let Lit::DateFn(name, n) = lit {
            let (start, end) = date_range(name, *n, self.now)?;
            let (s, e) = match f.ftype {
                FieldType::Date => (civil::format_date(start), civil::format_date(end)),
                FieldType::DateTime => (civil::format_datetime(start * DAY_MS), civil::format_datetime(end * DAY_MS)),
                _ => return Err(filter_type(&f)),
            };
            let (s, e) = (self.bind(Sql::Text(s)), self.bind(Sql::Text(e)));
            // Comparisons stay two-valued (a null never matches, and NOT of it does), as in SOQL.
            return Ok(match op {
                Op::Eq => format!("({col} IS NOT NULL AND {col} >= {s} AND {col} < {e})"),
                Op::Ne => format!("({col} IS NULL OR {col} < {s} OR {col} >= {e})"),
                Op::Lt => format!("({col} IS NOT NULL AND {col} < {s} AND {e} IS NOT NULL)"),
                Op::Le => format!("({col} IS NOT NULL AND {col} < {e} AND {s} IS NOT NULL)"),
                Op::Gt => format!("({col} IS NOT NULL AND {col} >= {e} AND {s} IS NOT NULL)"),
                Op::Ge => format!("({col} IS NOT NULL AND {col} >= {s} AND {e} IS NOT NULL)"),
                Op::Like => return Err(filter_type(&f)),
            });
        }
        let v = literal(&f, lit, op)?;
        let m = self.bind(v);
        // Every predicate is two-valued: SQL's NULL would make NOT (x = 'a') drop null rows,
        // which SOQL keeps.
        Ok(match op {
            Op::Eq => format!("({col} IS NOT NULL AND {col} = {m})"),
            // UNCONFIRMED: SOQL's != keeps rows whose value is null (SQL's would not).
            Op::Ne => format!("({col} IS NULL OR {col} != {m})"),
            Op::Lt => format!("({col} IS NOT NULL AND {col} < {m})"),
            Op::Le => format!("({col} IS NOT NULL AND {col} <= {m})"),
            Op::Gt => format!("({col} IS NOT NULL AND {col} > {m})"),
            Op::Ge => format!("({col} IS NOT NULL AND {col} >= {m})"),
            Op::Like => format!("({col} IS NOT NULL AND {col} LIKE {m} ESCAPE '\\')"),
        })
    }
}

fn filter_type(f: &crate::schema::Field) -> ApiError {
    let quoted = if f.ftype.is_textual() && !matches!(f.ftype, FieldType::Date | FieldType::DateTime) {
        "should be enclosed in quotes"
    } else {
        "should not be enclosed in quotes"
    };
    ApiError::bad(
        "INVALID_QUERY_FILTER_OPERATOR",
        format!("value of filter criterion for field '{}' must be of type {} and {quoted}", f.name, f.ftype.name()),
    )
}

/// A literal as the value stored for `f`.
fn literal(f: &crate::schema::Field, lit: &Lit, op: Op) -> Result<Sql, ApiError> {
    let bad = || filter_type(f);
    Ok(match f.ftype {
        FieldType::Boolean => match lit {
            Lit::Bool(b) => Sql::Integer(i64::from(*b)),
            _ => return Err(bad()),
        },
        FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => match lit {
            Lit::Num(n) => Sql::Real(n.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        FieldType::Date => match lit {
            Lit::Date(d) => Sql::Text(civil::format_date(civil::parse_date(d).ok_or_else(bad)?)),
            _ => return Err(bad()),
        },
        FieldType::DateTime => match lit {
            Lit::DateTime(d) | Lit::Date(d) => {
                Sql::Text(civil::format_datetime(civil::parse_datetime(d).ok_or_else(bad)?))
            }
            _ => return Err(bad()),
        },
        FieldType::Id | FieldType::Reference => match lit {
            Lit::Str(s) if op == Op::Like => Sql::Text(s.clone()),
            Lit::Str(s) => match normalize_id(s) {
                Some(id) => Sql::Text(id),
                None => return Err(ApiError::bad("INVALID_QUERY_FILTER_OPERATOR", format!("invalid ID field: {s}"))),
            },
            _ => return Err(bad()),
        },
        _ => match lit {
            Lit::Str(s) if op == Op::Like => Sql::Text(s.clone()),
            Lit::Str(s) => Sql::Text(s.replace("\\%", "%").replace("\\_", "_")),
            _ => return Err(bad()),
        },
    })
}

/// `[start, end)` in days for a date literal such as `LAST_N_DAYS:7`, in UTC.
/// UNCONFIRMED: Salesforce evaluates these in the user's time zone; the playground uses UTC.
fn date_range(name: &str, n: Option<i64>, now_ms: i64) -> Result<(i64, i64), ApiError> {
    let t = now_ms.div_euclid(DAY_MS);
    let n = n.unwrap_or(0);
    let week = t - (t + 4).rem_euclid(7);
    let (y, m, _) = civil::civil_from_days(t);
    let month = |y: i64, m: i64| {
        let (y, m) = (y + (m - 1).div_euclid(12), (m - 1).rem_euclid(12) + 1);
        civil::days_from_civil(y, m as u32, 1)
    };
    let m = i64::from(m);
    Ok(match name {
        "TODAY" => (t, t + 1),
        "YESTERDAY" => (t - 1, t),
        "TOMORROW" => (t + 1, t + 2),
        // UNCONFIRMED: LAST_N_DAYS:n covers today and the n days before it.
        "LAST_N_DAYS" => (t - n, t + 1),
        "NEXT_N_DAYS" => (t + 1, t + 1 + n),
        "THIS_WEEK" => (week, week + 7),
        "LAST_WEEK" => (week - 7, week),
        "NEXT_WEEK" => (week + 7, week + 14),
        "THIS_MONTH" => (month(y, m), month(y, m + 1)),
        "LAST_MONTH" => (month(y, m - 1), month(y, m)),
        "NEXT_MONTH" => (month(y, m + 1), month(y, m + 2)),
        "THIS_YEAR" => (civil::days_from_civil(y, 1, 1), civil::days_from_civil(y + 1, 1, 1)),
        "LAST_YEAR" => (civil::days_from_civil(y - 1, 1, 1), civil::days_from_civil(y, 1, 1)),
        "NEXT_YEAR" => (civil::days_from_civil(y + 1, 1, 1), civil::days_from_civil(y + 2, 1, 1)),
        other => return Err(malformed(format!("unexpected token: {other}"))),
    })
}

fn order_sql(c: &mut Compiler<'_>, order: &[soql::Order]) -> Result<String, ApiError> {
    let mut keys = Vec::new();
    for o in order {
        let (alias, object, fi, _) = c.resolve(&o.path)?;
        let f = &c.schema.objects[object].fields[fi];
        let nulls = match (o.nulls_last, o.desc) {
            (Some(true), _) | (None, true) => "NULLS LAST",
            _ => "NULLS FIRST",
        };
        keys.push(format!("{alias}.{} {} {nulls}", quote(&f.name), if o.desc { "DESC" } else { "ASC" }));
    }
    Ok(keys.join(", "))
}

fn syntax(e: soql::SyntaxError) -> ApiError {
    malformed(e.message)
}

/// Compiles the select list of `q` (fields, parents, child subqueries) into `c`.
fn compile_items(
    c: &mut Compiler<'_>,
    q: &Query,
    items: &mut Vec<Shape>,
    children: &mut Vec<ChildPlan>,
) -> Result<(), ApiError> {
    for item in &q.select {
        match item {
            Item::Field(p) => c.select_field(p, items)?,
            Item::Sub(sub) => {
                let root = &c.schema.objects[c.root];
                let rel = root.child(&sub.from).ok_or_else(|| {
                    ApiError::bad(
                        "INVALID_TYPE",
                        format!(
                            "Didn't understand relationship '{}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                            sub.from
                        ),
                    )
                })?;
                let plan = compile_child(c.schema, rel.child, rel.field, sub, c.now, &format!("c{}", children.len()))?;
                children.push(plan);
                items.push(Shape::Child { name: rel.name.clone(), index: children.len() - 1 });
            }
            Item::Agg { .. } => {
                return Err(malformed("Aggregate functions cannot be mixed with plain fields without GROUP BY"));
            }
        }
    }
    Ok(())
}

fn compile_child(
    schema: &Schema,
    object: usize,
    fk: usize,
    q: &Query,
    now: i64,
    prefix: &str,
) -> Result<ChildPlan, ApiError> {
    let mut c = Compiler::new(schema, object, q.alias.clone(), now, prefix);
    let mut items = Vec::new();
    let mut children = Vec::new();
    compile_items(&mut c, q, &mut items, &mut children)?;
    if !children.is_empty() {
        return Err(malformed("Nesting of child relationships is not supported"));
    }
    let o = &schema.objects[object];
    let fk_col = c.column(format!("{prefix}0.{}", quote(&o.fields[fk].name)));
    let filter = match &q.filter {
        Some(f) => format!(" AND {}", c.cond(f)?),
        None => String::new(),
    };
    let order = order_sql(&mut c, &q.order)?;
    let select = format!("SELECT {} FROM {} {prefix}0{}", c.cols.join(", "), o.table(), c.join_sql);
    let fk_name = quote(&o.fields[fk].name);
    Ok(ChildPlan {
        object: o.name.clone(),
        select: format!("{select} WHERE {prefix}0.\"IsDeleted\" = 0 AND {prefix}0.{fk_name} IN ("),
        fk_col,
        filter,
        params: c.params,
        order: if order.is_empty() { format!("{prefix}0.rid") } else { format!("{order}, {prefix}0.rid") },
        limit: q.limit,
        items,
    })
}

/// What a query compiles to.
pub(crate) enum Compiled {
    Rows(Plan),
    /// `SELECT COUNT() …`: only `totalSize`.
    Count {
        sql: String,
        params: Vec<Sql>,
    },
    /// Aggregate functions (with or without GROUP BY): AggregateResult rows.
    Aggregate {
        sql: String,
        params: Vec<Sql>,
        columns: Vec<(String, Option<FieldType>)>,
    },
}

/// Parses and compiles SOQL for `query` (live rows) or `queryAll` (deleted rows too).
pub(crate) fn compile(schema: &Schema, text: &str, all_rows: bool, now: i64) -> Result<Compiled, ApiError> {
    let q = soql::parse(text).map_err(syntax)?;
    let root = schema.index_of(&q.from).ok_or_else(|| invalid_type(&q.from))?;
    let o = &schema.objects[root];
    let mut c = Compiler::new(schema, root, q.alias.clone(), now, "t");
    let aggregates = q.select.iter().any(|i| matches!(i, Item::Agg { .. }));
    let mut filters = Vec::new();
    if !all_rows {
        filters.push("t0.\"IsDeleted\" = 0".to_owned());
    }
    // Compile the select list before WHERE, so parameters bind in statement order.
    if aggregates {
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        let mut n = 0;
        let is_count_only = q.select.len() == 1 && matches!(q.select[0], Item::Agg { func: Agg::Count, arg: None, .. });
        for item in &q.select {
            match item {
                Item::Agg { func, arg, alias } => {
                    let (expr, ftype) = match arg {
                        None => ("COUNT(*)".to_owned(), Some(FieldType::Int)),
                        Some(p) => {
                            let (a, ob, fi, _) = c.resolve(p)?;
                            let f = &schema.objects[ob].fields[fi];
                            let col = format!("{a}.{}", quote(&f.name));
                            match func {
                                Agg::Count => (format!("COUNT({col})"), Some(FieldType::Int)),
                                Agg::CountDistinct => (format!("COUNT(DISTINCT {col})"), Some(FieldType::Int)),
                                Agg::Sum => (format!("SUM({col})"), Some(FieldType::Double)),
                                Agg::Avg => (format!("AVG({col})"), Some(FieldType::Double)),
                                Agg::Min => (format!("MIN({col})"), Some(f.ftype)),
                                Agg::Max => (format!("MAX({col})"), Some(f.ftype)),
                            }
                        }
                    };
                    let name = alias.clone().unwrap_or_else(|| {
                        let s = format!("expr{n}");
                        n += 1;
                        s
                    });
                    exprs.push(expr);
                    columns.push((name, ftype));
                }
                Item::Field(p) => {
                    if !q.group_by.iter().any(|g| g.text().eq_ignore_ascii_case(&p.text())) {
                        return Err(malformed(format!(
                            "Field must be grouped or aggregated: {}",
                            p.parts.last().map(String::as_str).unwrap_or("")
                        )));
                    }
                    let (a, ob, fi, _) = c.resolve(p)?;
                    let f = &schema.objects[ob].fields[fi];
                    exprs.push(format!("{a}.{}", quote(&f.name)));
                    columns.push((f.name.clone(), Some(f.ftype)));
                }
                Item::Sub(_) => return Err(malformed("Subqueries cannot be used in aggregate queries")),
            }
        }
        if let Some(f) = &q.filter {
            filters.push(c.cond(f)?);
        }
        let mut group = Vec::new();
        for g in &q.group_by {
            let (a, ob, fi, _) = c.resolve(g)?;
            group.push(format!("{a}.{}", quote(&schema.objects[ob].fields[fi].name)));
        }
        let where_sql = if filters.is_empty() { String::new() } else { format!(" WHERE {}", filters.join(" AND ")) };
        let from = format!("FROM {} t0{}", o.table(), c.join_sql);
        if is_count_only && group.is_empty() {
            let mut sql = format!("SELECT COUNT(*) {from}{where_sql}");
            // LIMIT caps COUNT(): count the limited rows.
            if q.limit.is_some() || q.offset.is_some() {
                sql = format!(
                    "SELECT COUNT(*) FROM (SELECT 1 {from}{where_sql} LIMIT {} OFFSET {})",
                    q.limit.map_or(-1, |l| l as i64),
                    q.offset.unwrap_or(0)
                );
            }
            return Ok(Compiled::Count { sql, params: c.params });
        }
        let group_sql = if group.is_empty() { String::new() } else { format!(" GROUP BY {}", group.join(", ")) };
        let order = order_sql(&mut c, &q.order)?;
        let order_sql = if order.is_empty() { String::new() } else { format!(" ORDER BY {order}") };
        let sql = format!(
            "SELECT {} {from}{where_sql}{group_sql}{order_sql} LIMIT {} OFFSET {}",
            exprs.join(", "),
            q.limit.map_or(2000, |l| l.min(2000) as i64),
            q.offset.unwrap_or(0)
        );
        return Ok(Compiled::Aggregate { sql, params: c.params, columns });
    }
    if !q.group_by.is_empty() {
        return Err(malformed("GROUP BY needs an aggregate function in the select list"));
    }
    let mut items = Vec::new();
    let mut children = Vec::new();
    compile_items(&mut c, &q, &mut items, &mut children)?;
    if let Some(f) = &q.filter {
        filters.push(c.cond(f)?);
    }
    let order = order_sql(&mut c, &q.order)?;
    let where_sql = if filters.is_empty() { String::new() } else { format!(" WHERE {}", filters.join(" AND ")) };
    let from = format!("FROM {} t0{}", o.table(), c.join_sql);
    let keyset = order.is_empty() && q.offset.is_none();
    Ok(Compiled::Rows(Plan {
        object: o.name.clone(),
        select: format!("SELECT {} {from}{where_sql}", c.cols.join(", ")),
        count: format!("SELECT COUNT(*) {from}{where_sql}"),
        params: c.params,
        order: if order.is_empty() { "t0.rid".into() } else { format!("{order}, t0.rid") },
        keyset,
        offset: q.offset.unwrap_or(0),
        limit: q.limit,
        items,
        children,
    }))
}

fn write_str(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// A text cell as a JSON string: copied as is when it is valid UTF-8 needing no escapes (the
/// usual case), without an intermediate `String`.
fn write_text(buf: &mut Vec<u8>, t: &[u8]) {
    match std::str::from_utf8(t) {
        Ok(s) => write_str(buf, s),
        Err(_) => write_str(buf, &String::from_utf8_lossy(t)),
    }
}

/// Decimal digits of an integer, without `fmt` machinery.
fn write_int(buf: &mut Vec<u8>, i: i64) {
    let mut tmp = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut at = tmp.len();
    loop {
        at -= 1;
        tmp[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[at..]);
}

fn write_value(
    buf: &mut Vec<u8>,
    ftype: FieldType,
    v: ValueRef<'_>,
    object: &str,
    id: &str,
    field: &str,
    version: &str,
) {
    match v {
        ValueRef::Null => buf.extend_from_slice(b"null"),
        ValueRef::Integer(i) if ftype == FieldType::Boolean => {
            buf.extend_from_slice(if i != 0 { b"true" } else { b"false" })
        }
        ValueRef::Integer(i) => write_int(buf, i),
        ValueRef::Real(x) if ftype == FieldType::Int => write_int(buf, x as i64),
        ValueRef::Real(x) if x.is_finite() => {
            if x.fract() == 0.0 && x.abs() < 1e15 {
                // Whole numbers print as `300.0`, as Salesforce does for currency and double.
                write_int(buf, x as i64);
                buf.extend_from_slice(b".0");
            } else {
                let _ = write!(Buf(buf), "{x}");
            }
        }
        ValueRef::Real(_) => buf.extend_from_slice(b"null"),
        ValueRef::Text(t) => write_text(buf, t),
        ValueRef::Blob(_) => write_str(buf, &format!("/services/data/v{version}/sobjects/{object}/{id}/{field}")),
    }
}

/// `fmt::Write` into a byte buffer.
struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn text_at<'r>(get: &dyn Fn(usize) -> ValueRef<'r>, col: usize) -> Option<String> {
    match get(col) {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    }
}

/// Child records of one page, by parent id: JSON bytes of each child record and the count.
type ChildRows = HashMap<String, (u64, Vec<u8>)>;

#[allow(clippy::too_many_arguments)]
fn write_record<'r>(
    buf: &mut Vec<u8>,
    object: &str,
    items: &[Shape],
    get: &dyn Fn(usize) -> ValueRef<'r>,
    id_col: usize,
    version: &str,
    children: &[ChildRows],
) {
    // Borrowed from the row: no allocation per record.
    let id_cell = get(id_col);
    let id = match id_cell {
        ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or_default(),
        _ => "",
    };
    buf.extend_from_slice(b"{\"attributes\":{\"type\":");
    write_str(buf, object);
    buf.extend_from_slice(b",\"url\":\"/services/data/v");
    buf.extend_from_slice(version.as_bytes());
    buf.extend_from_slice(b"/sobjects/");
    buf.extend_from_slice(object.as_bytes());
    buf.push(b'/');
    buf.extend_from_slice(id.as_bytes());
    buf.extend_from_slice(b"\"}");
    for item in items {
        buf.push(b',');
        match item {
            Shape::Field { name, ftype, col } => {
                write_str(buf, name);
                buf.push(b':');
                write_value(buf, *ftype, get(*col), object, id, name, version);
            }
            Shape::Parent { name, object: pobj, id_col, items } => {
                write_str(buf, name);
                buf.push(b':');
                if matches!(get(*id_col), ValueRef::Null) {
                    buf.extend_from_slice(b"null");
                } else {
                    write_record(buf, pobj, items, get, *id_col, version, &[]);
                }
            }
            Shape::Child { name, index } => {
                write_str(buf, name);
                buf.push(b':');
                // Salesforce returns null, not an empty list, when a parent has no children.
                match children.get(*index).and_then(|m| m.get(id)) {
                    Some((n, rows)) => {
                        let _ = write!(Buf(buf), "{{\"totalSize\":{n},\"done\":true,\"records\":[");
                        buf.extend_from_slice(rows);
                        buf.extend_from_slice(b"]}");
                    }
                    None => buf.extend_from_slice(b"null"),
                }
            }
        }
    }
    buf.push(b'}');
}

fn run_children(
    db: &Db,
    plans: &[ChildPlan],
    parent_ids: &[String],
    version: &str,
) -> Result<Vec<ChildRows>, ApiError> {
    let mut out = Vec::new();
    for plan in plans {
        let mut map: ChildRows = HashMap::new();
        if parent_ids.is_empty() {
            out.push(map);
            continue;
        }
        let marks = vec!["?"; parent_ids.len()].join(",");
        let sql = format!("{}{marks}){} ORDER BY {}", plan.select, plan.filter, plan.order);
        let mut st = db.conn.prepare(&sql)?;
        let params: Vec<Sql> =
            parent_ids.iter().map(|s| Sql::Text(s.clone())).chain(plan.params.iter().cloned()).collect();
        let mut rows = st.query(params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let Some(parent) = text_at(&get, plan.fk_col) else { continue };
            let entry = map.entry(parent).or_insert((0, Vec::new()));
            if plan.limit.is_some_and(|l| entry.0 >= l) {
                continue;
            }
            if entry.0 > 0 {
                entry.1.push(b',');
            }
            entry.0 += 1;
            write_record(&mut entry.1, &plan.object, &plan.items, &get, 1, version, &[]);
        }
        out.push(map);
    }
    Ok(out)
}

/// Reads `n` rows of `plan` after `served` records (keyset after `after_rid` when known).
fn page(
    db: &Db,
    plan: &Plan,
    served: u64,
    after_rid: Option<i64>,
    n: usize,
    version: &str,
    buf: &mut Vec<u8>,
) -> Result<(usize, Option<i64>), ApiError> {
    let (sql, params) = match (plan.keyset, after_rid) {
        (true, Some(rid)) => {
            let glue = if plan.select.contains(" WHERE ") { " AND" } else { " WHERE" };
            let mut p = plan.params.clone();
            p.push(Sql::Integer(rid));
            (format!("{}{glue} t0.rid > ? ORDER BY t0.rid LIMIT {n}", plan.select), p)
        }
        _ => (
            format!("{} ORDER BY {} LIMIT {n} OFFSET {}", plan.select, plan.order, plan.offset + served),
            plan.params.clone(),
        ),
    };
    let mut st = db.conn.prepare_cached(&sql)?;
    let mut count = 0;
    let mut last_rid = None;
    if plan.children.is_empty() {
        let mut rows = st.query(params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            if count > 0 {
                buf.push(b',');
            }
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            last_rid = row.get::<_, i64>(0).ok();
            write_record(buf, &plan.object, &plan.items, &get, 1, version, &[]);
            count += 1;
        }
    } else {
        let ncols = st.column_count();
        let rows: Vec<Vec<Sql>> = st
            .query_map(params_from_iter(params), |r| (0..ncols).map(|i| r.get::<_, Sql>(i)).collect())?
            .collect::<Result<_, _>>()?;
        let ids: Vec<String> =
            rows.iter().filter_map(|r| if let Sql::Text(s) = &r[1] { Some(s.clone()) } else { None }).collect();
        let children = run_children(db, &plan.children, &ids, version)?;
        for r in &rows {
            if count > 0 {
                buf.push(b',');
            }
            let get = |i: usize| ValueRef::from(&r[i]);
            if let Sql::Integer(rid) = r[0] {
                last_rid = Some(rid);
            }
            write_record(buf, &plan.object, &plan.items, &get, 1, version, &children);
            count += 1;
        }
    }
    Ok((count, last_rid))
}

/// The batch size asked for with `Sforce-Query-Options: batchSize=N` (200–2000).
pub(crate) fn batch_size(headers: &axum::http::HeaderMap) -> usize {
    let asked = headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("batchSize").then(|| v.trim().parse::<usize>().ok()).flatten()
            })
        })
        .unwrap_or(DEFAULT_BATCH);
    asked.clamp(MIN_BATCH, DEFAULT_BATCH)
}

fn envelope(total: u64, next: Option<String>, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() + 160);
    let _ = write!(Buf(&mut out), "{{\"totalSize\":{total},\"done\":{}", next.is_none());
    if let Some(n) = next {
        out.extend_from_slice(b",\"nextRecordsUrl\":");
        write_str(&mut out, &n);
    }
    out.extend_from_slice(b",\"records\":[");
    out.extend_from_slice(records);
    out.extend_from_slice(b"]}");
    out
}

/// `GET query?q=` / `queryAll?q=`: the first page.
pub(crate) fn run(
    ctx: &mut Ctx<'_>,
    locators: &std::sync::Mutex<Locators>,
    text: &str,
    all_rows: bool,
    batch: usize,
) -> Result<Reply, ApiError> {
    let v = ctx.version.text.clone();
    match compile(&ctx.db.schema, text, all_rows, ctx.now)? {
        Compiled::Count { sql, params } => {
            let n: i64 = ctx.db.conn.query_row(&sql, params_from_iter(params), |r| r.get(0))?;
            Ok(Reply::json(StatusCode::OK, &json!({"totalSize": n, "done": true, "records": []})))
        }
        Compiled::Aggregate { sql, params, columns } => {
            let mut st = ctx.db.conn.prepare(&sql)?;
            let mut rows = st.query(params_from_iter(params))?;
            let mut records = Vec::new();
            while let Some(row) = rows.next()? {
                let mut m = serde_json::Map::new();
                m.insert("attributes".into(), json!({"type": "AggregateResult"}));
                for (i, (name, ftype)) in columns.iter().enumerate() {
                    let val = match (row.get_ref(i).unwrap_or(ValueRef::Null), ftype) {
                        (ValueRef::Null, _) => Value::Null,
                        (ValueRef::Integer(x), Some(FieldType::Boolean)) => json!(x != 0),
                        (ValueRef::Integer(x), _) => json!(x),
                        (ValueRef::Real(x), _) => json!(x),
                        (ValueRef::Text(t), _) => json!(String::from_utf8_lossy(t)),
                        (ValueRef::Blob(_), _) => Value::Null,
                    };
                    m.insert(name.clone(), val);
                }
                records.push(Value::Object(m));
            }
            Ok(Reply::json(StatusCode::OK, &json!({"totalSize": records.len(), "done": true, "records": records})))
        }
        Compiled::Rows(plan) => {
            let counted: i64 =
                ctx.db.conn.query_row(&plan.count, params_from_iter(plan.params.iter()), |r| r.get(0))?;
            let mut total = (counted.max(0) as u64).saturating_sub(plan.offset);
            if let Some(l) = plan.limit {
                total = total.min(l);
            }
            let n = batch.min(total as usize);
            let mut buf = Vec::with_capacity(n * 200);
            let (got, last) = page(ctx.db, &plan, 0, None, n, &v, &mut buf)?;
            let served = got as u64;
            let next = if served < total {
                let mut l = locators.lock().unwrap_or_else(|p| p.into_inner());
                l.next += 1;
                let id = crate::ids::mint("01g", l.next);
                let mut boundaries = HashMap::new();
                if let Some(rid) = last {
                    boundaries.insert(served, rid);
                }
                if l.cursors.len() >= MAX_LOCATORS {
                    let oldest = l.cursors.iter().min_by_key(|(_, c)| c.touched_ms).map(|(k, _)| k.clone());
                    if let Some(k) = oldest {
                        l.cursors.remove(&k);
                    }
                }
                l.cursors
                    .insert(id.clone(), Cursor { plan: Arc::new(plan), total, batch, boundaries, touched_ms: ctx.now });
                Some(format!("/services/data/v{v}/query/{id}-{served}"))
            } else {
                None
            };
            Ok(Reply::raw_json(StatusCode::OK, envelope(total, next, &buf)))
        }
    }
}

/// `GET query/{locator}-{n}`: a following page.
pub(crate) fn more(ctx: &mut Ctx<'_>, locators: &std::sync::Mutex<Locators>, locator: &str) -> Result<Reply, ApiError> {
    let invalid = || ApiError::bad("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, served) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let served: u64 = served.parse().map_err(|_| invalid())?;
    let v = ctx.version.text.clone();
    let (plan, total, batch, after) = {
        let mut l = locators.lock().unwrap_or_else(|p| p.into_inner());
        let now = ctx.now;
        l.cursors.retain(|_, c| now - c.touched_ms < LOCATOR_IDLE_MS);
        let c = l.cursors.get_mut(id).ok_or_else(invalid)?;
        if served >= c.total {
            return Err(invalid());
        }
        c.touched_ms = now;
        (c.plan.clone(), c.total, c.batch, c.boundaries.get(&served).copied())
    };
    let n = batch.min((total - served) as usize);
    let mut buf = Vec::with_capacity(n * 200);
    let (got, last) = page(ctx.db, &plan, served, after, n, &v, &mut buf)?;
    let now_served = served + got as u64;
    let next = if now_served < total && got > 0 {
        let mut l = locators.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(c), Some(rid)) = (l.cursors.get_mut(id), last) {
            c.boundaries.insert(now_served, rid);
        }
        Some(format!("/services/data/v{v}/query/{id}-{now_served}"))
    } else {
        None
    };
    Ok(Reply::raw_json(StatusCode::OK, envelope(total, next, &buf)))
}

/// Runs a plan to the end, calling `row` with each record's cells (Bulk 2.0 query results).
pub(crate) fn plan_columns(plan: &Plan) -> Vec<(String, usize, FieldType)> {
    fn walk(items: &[Shape], prefix: &str, out: &mut Vec<(String, usize, FieldType)>) {
        for i in items {
            match i {
                Shape::Field { name, ftype, col } => out.push((format!("{prefix}{name}"), *col, *ftype)),
                Shape::Parent { name, items, .. } => walk(items, &format!("{prefix}{name}."), out),
                Shape::Child { .. } => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&plan.items, "", &mut out);
    out
}

impl Plan {
    pub(crate) fn has_children(&self) -> bool {
        !self.children.is_empty()
    }
    pub(crate) fn object(&self) -> &str {
        &self.object
    }
    /// Total rows the plan yields.
    pub(crate) fn total(&self, db: &Db) -> Result<u64, ApiError> {
        let counted: i64 = db.conn.query_row(&self.count, params_from_iter(self.params.iter()), |r| r.get(0))?;
        let mut total = (counted.max(0) as u64).saturating_sub(self.offset);
        if let Some(l) = self.limit {
            total = total.min(l);
        }
        Ok(total)
    }
    /// Rows `[served, served + n)` as raw cells, keyset after `after_rid` when known.
    pub(crate) fn rows(
        &self,
        db: &Db,
        served: u64,
        after_rid: Option<i64>,
        n: usize,
    ) -> Result<Vec<Vec<Sql>>, ApiError> {
        let (sql, params) = match (self.keyset, after_rid) {
            (true, Some(rid)) => {
                let glue = if self.select.contains(" WHERE ") { " AND" } else { " WHERE" };
                let mut p = self.params.clone();
                p.push(Sql::Integer(rid));
                (format!("{}{glue} t0.rid > ? ORDER BY t0.rid LIMIT {n}", self.select), p)
            }
            _ => (
                format!("{} ORDER BY {} LIMIT {n} OFFSET {}", self.select, self.order, self.offset + served),
                self.params.clone(),
            ),
        };
        let mut st = db.conn.prepare_cached(&sql)?;
        let ncols = st.column_count();
        let rows = st
            .query_map(params_from_iter(params), |r| (0..ncols).map(|i| r.get::<_, Sql>(i)).collect())?
            .collect::<Result<Vec<Vec<Sql>>, _>>()?;
        Ok(rows)
    }
}

/// `GET search?q=` (the SOSL subset).
pub(crate) fn search(ctx: &mut Ctx<'_>, text: &str) -> Result<Reply, ApiError> {
    let s = soql::parse_search(text).map_err(|e| ApiError::bad("MALFORMED_SEARCH", e.message))?;
    if s.term.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
        return Err(ApiError::bad("MALFORMED_SEARCH", "search term must be longer than one character"));
    }
    let schema = ctx.db.schema.clone();
    let targets: Vec<soql::Returning> = if s.returning.is_empty() {
        ["Account", "Contact", "Lead", "Opportunity", "Case"]
            .iter()
            .map(|o| soql::Returning {
                object: (*o).into(),
                pos: 0,
                fields: vec![],
                filter: None,
                order: vec![],
                limit: None,
            })
            .collect()
    } else {
        s.returning.clone()
    };
    // SOSL wildcards: * (any run) and ? (one character).
    let pattern = format!(
        "%{}%",
        s.term
            .trim_matches('"')
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
            .replace('*', "%")
            .replace('?', "_")
    );
    let v = ctx.version.text.clone();
    let mut out = Vec::new();
    let overall = s.limit.unwrap_or(2000).min(2000);
    for r in targets {
        let oi = schema.index_of(&r.object).ok_or_else(|| invalid_type(&r.object))?;
        let o = &schema.objects[oi];
        let mut c = Compiler::new(&schema, oi, None, ctx.now, "t");
        let mut items = Vec::new();
        let fields =
            if r.fields.is_empty() { vec![Path { parts: vec!["Id".into()], pos: 0 }] } else { r.fields.clone() };
        for f in &fields {
            c.select_field(f, &mut items)?;
        }
        let searchable: Vec<String> = o
            .fields
            .iter()
            .filter(|f| {
                matches!(
                    f.ftype,
                    FieldType::String
                        | FieldType::Email
                        | FieldType::Phone
                        | FieldType::TextArea
                        | FieldType::Url
                        | FieldType::Picklist
                )
            })
            .map(|f| format!("t0.{} LIKE ? ESCAPE '\\'", quote(&f.name)))
            .collect();
        if searchable.is_empty() {
            continue;
        }
        let mut filter = format!("t0.\"IsDeleted\" = 0 AND ({})", searchable.join(" OR "));
        let n_like = searchable.len();
        let mut params: Vec<Sql> = c.params.clone();
        params.extend(std::iter::repeat_n(Sql::Text(pattern.clone()), n_like));
        if let Some(w) = &r.filter {
            let before = c.params.len();
            let sql = c.cond(w)?;
            params.extend(c.params[before..].iter().cloned());
            filter.push_str(&format!(" AND {sql}"));
        }
        let order = order_sql(&mut c, &r.order)?;
        let order = if order.is_empty() { "t0.rid".to_owned() } else { format!("{order}, t0.rid") };
        let limit = r.limit.unwrap_or(overall).min(overall.saturating_sub(out.len() as u64));
        if limit == 0 {
            break;
        }
        let sql = format!(
            "SELECT {} FROM {} t0{} WHERE {filter} ORDER BY {order} LIMIT {limit}",
            c.cols.join(", "),
            o.table(),
            c.join_sql
        );
        let mut st = ctx.db.conn.prepare(&sql)?;
        let mut rows = st.query(params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let mut buf = Vec::new();
            write_record(&mut buf, &o.name, &items, &get, 1, &v, &[]);
            out.push(serde_json::from_slice::<Value>(&buf).map_err(ApiError::internal)?);
        }
    }
    // UNCONFIRMED: the version where results moved into {"searchRecords": [...]}; 37.0 assumed.
    if ctx.version.major < 37 {
        Ok(Reply::json(StatusCode::OK, &Value::Array(out)))
    } else {
        Ok(Reply::json(StatusCode::OK, &json!({"searchRecords": out})))
    }
}
