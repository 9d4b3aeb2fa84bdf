//! SOQL compiled to one SQLite statement: parent paths become LEFT JOINs, WHERE becomes SQL with
//! bound parameters, date literals become ranges on the playground clock.

use std::fmt::Write as _;

use rusqlite::types::Value as Sql;

use crate::civil::{self, DAY_MS};
use crate::data::request::SfError;
use crate::data::soql::{self, Agg, Cond, Grouping, Item, Lit, Op, Path, Query};
use crate::ids::normalize as normalize_id;
use crate::schema::{FieldType, Schema};
use crate::store::plan::{ChildPlan, Plan, Shape};
use crate::store::quote;

use super::extend::{check_fields, fields_paths, grouping_sets, type_of_paths};
use super::{invalid_type, malformed, no_column, no_relationship, with_layout};

/// A resolved field path: table alias, object, field index, and the relationship hops
/// (relationship name, target object, alias) that lead to it.
pub(super) type Resolved = (String, usize, usize, Vec<(String, usize, String)>);

pub(super) struct Compiler<'a> {
    pub(super) schema: &'a Schema,
    pub(super) root: usize,
    pub(super) alias: Option<String>,
    pub(super) joins: Vec<(String, String)>,
    pub(super) join_sql: String,
    pub(super) cols: Vec<String>,
    pub(super) params: Vec<Sql>,
    pub(super) now: i64,
    pub(super) prefix: String,
    /// Semi- and anti-join subqueries compiled so far (each gets its own table aliases).
    pub(super) subqueries: usize,
    /// Compiling HAVING: aggregate comparisons are allowed.
    pub(super) having: bool,
}

impl<'a> Compiler<'a> {
    pub(super) fn new(schema: &'a Schema, root: usize, alias: Option<String>, now: i64, prefix: &str) -> Self {
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
            subqueries: 0,
            having: false,
        }
    }

    /// Resolves a field path to (table alias, object, field index, relationship hops).
    pub(super) fn resolve(&mut self, path: &Path) -> Result<Resolved, SfError> {
        if path.parts.is_empty() {
            return Err(malformed("unexpected token: )").at(path.pos));
        }
        self.resolve_at(path).map_err(|e| e.at(path.pos))
    }

    fn resolve_at(&mut self, path: &Path) -> Result<Resolved, SfError> {
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

    pub(super) fn column(&mut self, sql: String) -> usize {
        self.cols.push(sql);
        self.cols.len() - 1
    }

    /// Adds a selected field to the output tree.
    pub(super) fn select_field(&mut self, path: &Path, items: &mut Vec<Shape>) -> Result<(), SfError> {
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
            let Shape::Parent { items, .. } = &mut level[pos] else { return Err(SfError::internal("shape")) };
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

    pub(super) fn bind(&mut self, v: Sql) -> String {
        self.params.push(v);
        "?".to_owned()
    }

    pub(super) fn cond(&mut self, c: &Cond) -> Result<String, SfError> {
        Ok(match c {
            Cond::And(parts) => {
                let s: Result<Vec<String>, SfError> = parts.iter().map(|p| self.cond(p)).collect();
                format!("({})", s?.join(" AND "))
            }
            Cond::Or(parts) => {
                let s: Result<Vec<String>, SfError> = parts.iter().map(|p| self.cond(p)).collect();
                format!("({})", s?.join(" OR "))
            }
            Cond::Not(inner) => format!("(NOT {})", self.cond(inner)?),
            Cond::Cmp(path, op, lit) => self.compare(path, *op, lit)?,
            Cond::InQuery(path, negated, sub) => self.semi_join(path, *negated, sub)?,
            Cond::AggCmp(func, arg, op, lit) => {
                if !self.having {
                    let pos = arg.as_ref().map_or(0, |p| p.pos);
                    return Err(malformed(
                        "Aggregate functions are only allowed in the select list, HAVING and ORDER BY",
                    )
                    .at(pos));
                }
                let (expr, ftype) = self.agg_expr(*func, arg.as_ref())?;
                let v = match (ftype, lit) {
                    (_, Lit::Null) => return Err(malformed("invalid operator for null in HAVING")),
                    (Some(t), _) if matches!(func, Agg::Min | Agg::Max) && t != FieldType::Double => {
                        let (_, ob, fi, _) =
                            self.resolve(arg.as_ref().ok_or_else(|| malformed("MIN and MAX need a field"))?)?;
                        let f = self.schema.objects[ob].fields[fi].clone();
                        literal(&f, lit, *op)?
                    }
                    (_, Lit::Num(n)) => Sql::Real(n.parse().map_err(|_| malformed(format!("unexpected token: {n}")))?),
                    _ => {
                        return Err(SfError::bad(
                            "INVALID_QUERY_FILTER_OPERATOR",
                            "value of filter criterion for an aggregate function must be a number",
                        ));
                    }
                };
                let m = self.bind(v);
                let sym = match op {
                    Op::Eq => "=",
                    Op::Ne => "!=",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                    Op::Like => return Err(malformed("LIKE cannot compare an aggregate function")),
                };
                format!("({expr} {sym} {m})")
            }
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
                    return Err(SfError::bad(
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

    /// The SQL of an aggregate function and the type of its result.
    pub(super) fn agg_expr(&mut self, func: Agg, arg: Option<&Path>) -> Result<(String, Option<FieldType>), SfError> {
        let Some(p) = arg else { return Ok(("COUNT(*)".to_owned(), Some(FieldType::Int))) };
        let (a, ob, fi, _) = self.resolve(p)?;
        let f = &self.schema.objects[ob].fields[fi];
        let col = format!("{a}.{}", quote(&f.name));
        Ok(match func {
            Agg::Count => (format!("COUNT({col})"), Some(FieldType::Int)),
            Agg::CountDistinct => (format!("COUNT(DISTINCT {col})"), Some(FieldType::Int)),
            Agg::Sum => (format!("SUM({col})"), Some(FieldType::Double)),
            Agg::Avg => (format!("AVG({col})"), Some(FieldType::Double)),
            Agg::Min => (format!("MIN({col})"), Some(f.ftype)),
            Agg::Max => (format!("MAX({col})"), Some(f.ftype)),
        })
    }

    /// `path [NOT] IN (SELECT field FROM …)`: the subquery becomes a SQL subselect with its own
    /// aliases; its parameters bind where it stands in the statement.
    fn semi_join(&mut self, path: &Path, negated: bool, sub: &Query) -> Result<String, SfError> {
        let (alias, object, fi, _) = self.resolve(path)?;
        let outer = format!("{alias}.{}", quote(&self.schema.objects[object].fields[fi].name));
        let [Item::Field(selected)] = sub.select.as_slice() else {
            // Salesforce: a semi-join subquery selects exactly one Id or reference field.
            return Err(SfError::bad(
                "MALFORMED_QUERY",
                "The selected field in a semi join subquery must be a single Id or reference field",
            )
            .at(sub.from_pos));
        };
        let inner_root = self.schema.index_of(&sub.from).ok_or_else(|| invalid_type(&sub.from).at(sub.from_pos))?;
        self.subqueries += 1;
        let prefix = format!("{}s{}_", self.prefix, self.subqueries);
        let mut inner = Compiler::new(self.schema, inner_root, sub.alias.clone(), self.now, &prefix);
        let (ia, io, ifi, _) = inner.resolve(selected)?;
        let f = &self.schema.objects[io].fields[ifi];
        if !matches!(f.ftype, FieldType::Id | FieldType::Reference) {
            return Err(SfError::bad(
                "MALFORMED_QUERY",
                "The selected field in a semi join subquery must be a single Id or reference field",
            )
            .at(selected.pos));
        }
        let col = format!("{ia}.{}", quote(&f.name));
        let mut filters = vec![format!("{prefix}0.\"IsDeleted\" = 0"), format!("{col} IS NOT NULL")];
        if let Some(fl) = &sub.filter {
            filters.push(inner.cond(fl)?);
        }
        let limit = sub.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let sql = format!(
            "SELECT {col} FROM {} {prefix}0{} WHERE {}{limit}",
            self.schema.objects[inner_root].table(),
            inner.join_sql,
            filters.join(" AND ")
        );
        self.params.extend(inner.params);
        Ok(if negated {
            // UNCONFIRMED: like NOT IN with values, an anti-join keeps rows whose field is null.
            format!("({outer} IS NULL OR {outer} NOT IN ({sql}))")
        } else {
            format!("({outer} IS NOT NULL AND {outer} IN ({sql}))")
        })
    }

    pub(super) fn compare(&mut self, path: &Path, op: Op, lit: &Lit) -> Result<String, SfError> {
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

pub(super) fn filter_type(f: &crate::schema::Field) -> SfError {
    let quoted = if f.ftype.is_textual() && !matches!(f.ftype, FieldType::Date | FieldType::DateTime) {
        "should be enclosed in quotes"
    } else {
        "should not be enclosed in quotes"
    };
    SfError::bad(
        "INVALID_QUERY_FILTER_OPERATOR",
        format!("value of filter criterion for field '{}' must be of type {} and {quoted}", f.name, f.ftype.name()),
    )
}

/// A literal as the value stored for `f`.
pub(super) fn literal(f: &crate::schema::Field, lit: &Lit, op: Op) -> Result<Sql, SfError> {
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
                None => return Err(SfError::bad("INVALID_QUERY_FILTER_OPERATOR", format!("invalid ID field: {s}"))),
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
pub(super) fn date_range(name: &str, n: Option<i64>, now_ms: i64) -> Result<(i64, i64), SfError> {
    let t = now_ms.div_euclid(DAY_MS);
    let n = n.unwrap_or(0);
    let out_of_range = || malformed(format!("date literal {name} is out of range"));
    let week = civil::week_start(t).ok_or_else(out_of_range)?;
    let month = |k: i64| civil::month_start(t, k).ok_or_else(out_of_range);
    let year = |k: i64| civil::year_start(t, k).ok_or_else(out_of_range);
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
        "THIS_MONTH" => (month(0)?, month(1)?),
        "LAST_MONTH" => (month(-1)?, month(0)?),
        "NEXT_MONTH" => (month(1)?, month(2)?),
        "THIS_YEAR" => (year(0)?, year(1)?),
        "LAST_YEAR" => (year(-1)?, year(0)?),
        "NEXT_YEAR" => (year(1)?, year(2)?),
        other => return Err(malformed(format!("unexpected token: {other}"))),
    })
}

pub(super) fn order_sql(c: &mut Compiler<'_>, order: &[soql::Order]) -> Result<String, SfError> {
    let mut keys = Vec::new();
    for o in order {
        let expr = match o.agg {
            Some(func) => c.agg_expr(func, (!o.path.parts.is_empty()).then_some(&o.path))?.0,
            None => {
                let (alias, object, fi, _) = c.resolve(&o.path)?;
                format!("{alias}.{}", quote(&c.schema.objects[object].fields[fi].name))
            }
        };
        let nulls = match (o.nulls_last, o.desc) {
            (Some(true), _) | (None, true) => "NULLS LAST",
            _ => "NULLS FIRST",
        };
        keys.push(format!("{expr} {} {nulls}", if o.desc { "DESC" } else { "ASC" }));
    }
    Ok(keys.join(", "))
}

pub(super) fn syntax(e: soql::SyntaxError) -> SfError {
    malformed(e.message).at(e.pos)
}

/// Compiles the select list of `q` (fields, parents, child subqueries) into `c`.
pub(super) fn compile_items(
    c: &mut Compiler<'_>,
    q: &Query,
    items: &mut Vec<Shape>,
    children: &mut Vec<ChildPlan>,
) -> Result<(), SfError> {
    check_fields(q)?;
    for item in &q.select {
        match item {
            Item::Field(p) => c.select_field(p, items)?,
            Item::Fields(set, pos) => {
                for p in fields_paths(c.schema, c.root, *set, *pos) {
                    c.select_field(&p, items)?;
                }
            }
            Item::TypeOf { rel, whens, otherwise } => {
                for p in type_of_paths(c.schema, c.root, rel, whens, otherwise)? {
                    c.select_field(&p, items)?;
                }
            }
            Item::Sub(sub) => {
                let root = &c.schema.objects[c.root];
                let rel = root.child(&sub.from).ok_or_else(|| -> SfError {
                    SfError::bad(
                        "INVALID_TYPE",
                        format!(
                            "Didn't understand relationship '{}' in FROM part of query call. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                            sub.from
                        ),
                    )
                    .at(sub.from_pos)
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

pub(super) fn compile_child(
    schema: &Schema,
    object: usize,
    fk: usize,
    q: &Query,
    now: i64,
    prefix: &str,
) -> Result<ChildPlan, SfError> {
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
pub(crate) fn compile(schema: &Schema, text: &str, all_rows: bool, now: i64) -> Result<Compiled, SfError> {
    compile_query(schema, text, all_rows, now).map_err(|e| with_layout(text, e))
}

fn compile_query(schema: &Schema, text: &str, all_rows: bool, now: i64) -> Result<Compiled, SfError> {
    let q = soql::parse(text).map_err(syntax)?;
    let root = schema.index_of(&q.from).ok_or_else(|| invalid_type(&q.from).at(q.from_pos))?;
    check_fields(&q)?;
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
                    let (expr, ftype) = c.agg_expr(*func, arg.as_ref())?;
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
                        ))
                        .at(p.pos));
                    }
                    let (a, ob, fi, _) = c.resolve(p)?;
                    let f = &schema.objects[ob].fields[fi];
                    exprs.push(format!("{a}.{}", quote(&f.name)));
                    columns.push((f.name.clone(), Some(f.ftype)));
                }
                Item::Sub(_) | Item::Fields(..) | Item::TypeOf { .. } => {
                    return Err(malformed("Subqueries cannot be used in aggregate queries"));
                }
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
        let having = match &q.having {
            Some(h) => {
                c.having = true;
                let sql = c.cond(h)?;
                c.having = false;
                format!(" HAVING {sql}")
            }
            None => String::new(),
        };
        let limit_sql =
            format!(" LIMIT {} OFFSET {}", q.limit.map_or(2000, |l| l.min(2000) as i64), q.offset.unwrap_or(0));
        if q.grouping != Grouping::Plain {
            return rollup(&mut c, &q, &exprs, &group, columns, &from, &where_sql, &having, &limit_sql);
        }
        let group_sql = if group.is_empty() { String::new() } else { format!(" GROUP BY {}", group.join(", ")) };
        let order = order_sql(&mut c, &q.order)?;
        let order_sql = if order.is_empty() { String::new() } else { format!(" ORDER BY {order}") };
        let sql = format!("SELECT {} {from}{where_sql}{group_sql}{having}{order_sql}{limit_sql}", exprs.join(", "));
        return Ok(Compiled::Aggregate { sql, params: c.params, columns });
    }
    if !q.group_by.is_empty() {
        return Err(malformed("GROUP BY needs an aggregate function in the select list"));
    }
    if q.having.is_some() {
        return Err(malformed("HAVING needs GROUP BY"));
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

/// `GROUP BY ROLLUP(…)` / `CUBE(…)`: one SELECT per grouping set (rolled-up keys read null),
/// joined with UNION ALL. Without ORDER BY, subtotal rows follow the groups they sum and the
/// grand total comes last. UNCONFIRMED: Salesforce's row order for subtotals.
#[allow(clippy::too_many_arguments)]
fn rollup(
    c: &mut Compiler<'_>,
    q: &Query,
    exprs: &[String],
    group: &[String],
    columns: Vec<(String, Option<FieldType>)>,
    from: &str,
    where_sql: &str,
    having: &str,
    limit_sql: &str,
) -> Result<Compiled, SfError> {
    let mut selects = Vec::new();
    let mut params = Vec::new();
    for set in grouping_sets(q.grouping, group.len()) {
        let kept: Vec<&String> = group.iter().zip(&set).filter(|(_, k)| **k).map(|(g, _)| g).collect();
        let list: Vec<String> = exprs
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let rolled = group.iter().zip(&set).any(|(g, k)| !*k && g == e);
                format!("{} AS \"c{i}\"", if rolled { "NULL" } else { e.as_str() })
            })
            .collect();
        let group_sql = if kept.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", kept.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
        };
        selects.push(format!("SELECT {} {from}{where_sql}{group_sql}{having}", list.join(", ")));
        params.extend(c.params.iter().cloned());
    }
    let mut keys = Vec::new();
    for o in &q.order {
        let i = q
            .select
            .iter()
            .position(|item| match (item, o.agg) {
                (Item::Field(p), None) => p.text().eq_ignore_ascii_case(&o.path.text()),
                (Item::Agg { func, arg, .. }, Some(f)) => {
                    *func == f && arg.as_ref().map(Path::text).unwrap_or_default().eq_ignore_ascii_case(&o.path.text())
                }
                _ => false,
            })
            .ok_or_else(|| {
                malformed("ORDER BY with ROLLUP or CUBE must name an item of the select list").at(o.path.pos)
            })?;
        keys.push(format!("\"c{i}\" {} NULLS LAST", if o.desc { "DESC" } else { "ASC" }));
    }
    if keys.is_empty() {
        for g in group {
            if let Some(i) = exprs.iter().position(|e| e == g) {
                keys.push(format!("\"c{i}\" ASC NULLS LAST"));
            }
        }
    }
    let order_sql = if keys.is_empty() { String::new() } else { format!(" ORDER BY {}", keys.join(", ")) };
    let sql = format!("SELECT * FROM ({}){order_sql}{limit_sql}", selects.join(" UNION ALL "));
    Ok(Compiled::Aggregate { sql, params, columns })
}
