//! `GET search?q=`: the SOSL subset, run as one query per `RETURNING` object.

use axum::http::StatusCode;
use rusqlite::params_from_iter;
use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::{Value, json};

use crate::data::request::{Ctx, Reply, SfError};
use crate::data::soql::{self, Path};
use crate::schema::FieldType;
use crate::store::quote;

use super::compile::{Compiler, order_sql};
use super::encode::Encoded;
use super::invalid_type;

/// `GET search?q=` (the SOSL subset).
pub(crate) fn search(ctx: &mut Ctx<'_>, text: &str) -> Result<Reply, SfError> {
    let s = soql::parse_search(text).map_err(|e| SfError::bad("MALFORMED_SEARCH", e.message))?;
    if s.term.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
        return Err(SfError::bad("MALFORMED_SEARCH", "search term must be longer than one character"));
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
        let record = Encoded::new(&o.name, &items, 1, &v);
        let mut rows = st.query(params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let get = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
            let mut buf = Vec::new();
            record.write(&mut buf, &get, &v, &[]);
            out.push(serde_json::from_slice::<Value>(&buf).map_err(SfError::internal)?);
        }
    }
    // UNCONFIRMED: the version where results moved into {"searchRecords": [...]}; 37.0 assumed.
    if ctx.version.major < 37 {
        Ok(Reply::json(StatusCode::OK, &Value::Array(out)))
    } else {
        Ok(Reply::json(StatusCode::OK, &json!({"searchRecords": out})))
    }
}
