//! Replication: `sobjects/{T}/updated/?start=&end=` (ids of records changed in the window) and
//! `sobjects/{T}/deleted/?start=&end=` (records in the recycle bin deleted in it), on the
//! playground clock. A deletion's time is the record's `SystemModstamp`, which delete sets.

use axum::http::StatusCode;
use serde_json::json;

use crate::civil;
use crate::data::request::{Ctx, Params, Reply, SfError};

/// `latestDateCovered` is cut to the minute, as in the recorded answer (`…08:17:00.000+0000`).
/// UNCONFIRMED: `earliestDateAvailable` is the oldest deletion kept (the recycle bin is never
/// emptied here; Salesforce keeps about 15 days).
const MINUTE_MS: i64 = 60_000;

fn window(params: &Params) -> Result<(i64, i64, String, String), SfError> {
    let get = |k: &str| -> Result<i64, SfError> {
        let v = params.get(k).ok_or_else(|| {
            // UNCONFIRMED: the error for a missing start or end.
            SfError::bad("MALFORMED_QUERY", format!("Missing required parameter '{k}'"))
        })?;
        civil::parse_datetime(v.trim()).ok_or_else(|| {
            SfError::bad("INVALID_REPLICATION_DATE", format!("Unable to parse '{k}' as a dateTime: {v}"))
        })
    };
    let (start, end) = (get("start")?, get("end")?);
    if end < start {
        // UNCONFIRMED: wording.
        return Err(SfError::bad("INVALID_REPLICATION_DATE", "end date must be after start date"));
    }
    Ok((start, end, civil::format_datetime(start), civil::format_datetime(end)))
}

/// The end of the window actually covered: the end, or now if earlier, down to the minute.
fn latest_covered(end: i64, now: i64) -> String {
    let t = end.min(now);
    civil::format_datetime(t - t.rem_euclid(MINUTE_MS))
}

/// `GET sobjects/{T}/updated`: `{"ids": [...], "latestDateCovered": …}`.
pub(crate) fn updated(ctx: &mut Ctx<'_>, oi: usize, params: &Params) -> Result<Reply, SfError> {
    let (_, end, s, e) = window(params)?;
    let o = &ctx.db.schema.objects[oi];
    let sql = format!(
        "SELECT \"Id\" FROM {} WHERE \"IsDeleted\" = 0 AND \"SystemModstamp\" >= ?1 AND \"SystemModstamp\" <= ?2 ORDER BY \"SystemModstamp\", rid",
        o.table()
    );
    let mut st = ctx.db.conn.prepare(&sql)?;
    let ids: Vec<String> = st.query_map([&s, &e], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(Reply::json(StatusCode::OK, &json!({"ids": ids, "latestDateCovered": latest_covered(end, ctx.now)})))
}

/// `GET sobjects/{T}/deleted`: `{"deletedRecords": [{"id","deletedDate"}], "earliestDateAvailable",
/// "latestDateCovered"}`.
pub(crate) fn deleted(ctx: &mut Ctx<'_>, oi: usize, params: &Params) -> Result<Reply, SfError> {
    let (_, end, s, e) = window(params)?;
    let o = &ctx.db.schema.objects[oi];
    let sql = format!(
        "SELECT \"Id\", \"SystemModstamp\" FROM {} WHERE \"IsDeleted\" = 1 AND \"SystemModstamp\" >= ?1 AND \"SystemModstamp\" <= ?2 ORDER BY \"SystemModstamp\", rid",
        o.table()
    );
    let mut st = ctx.db.conn.prepare(&sql)?;
    let rows: Vec<serde_json::Value> = st
        .query_map([&s, &e], |r| Ok(json!({"id": r.get::<_, String>(0)?, "deletedDate": r.get::<_, String>(1)?})))?
        .collect::<Result<_, _>>()?;
    let earliest: Option<String> = ctx.db.conn.query_row(
        &format!("SELECT MIN(\"SystemModstamp\") FROM {} WHERE \"IsDeleted\" = 1", o.table()),
        [],
        |r| r.get(0),
    )?;
    let earliest = earliest.unwrap_or_else(|| latest_covered(end, ctx.now));
    Ok(Reply::json(
        StatusCode::OK,
        &json!({"deletedRecords": rows, "earliestDateAvailable": earliest, "latestDateCovered": latest_covered(end, ctx.now)}),
    ))
}
