//! The User password resource (`/sobjects/User/{id}/password`, API 24.0+): `GET` says whether
//! the password has expired, `POST {"NewPassword"}` sets it, `DELETE` resets it to a generated
//! one returned in the body. A password set here works for the password grant.

use axum::http::{Method, StatusCode};
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use super::records;
use super::request::{Ctx, Reply, SfError, json_object};
use crate::state::Shared;

fn policy(p: &str) -> Result<(), SfError> {
    // Salesforce's default policy: 8 characters, letters and numbers.
    if p.chars().count() < 8 {
        return Err(SfError::bad("INVALID_NEW_PASSWORD", "Your password must be at least 8 characters long."));
    }
    if !p.chars().any(|c| c.is_alphabetic()) || !p.chars().any(|c| c.is_ascii_digit()) {
        return Err(SfError::bad("INVALID_NEW_PASSWORD", "Your password must include letters and numbers."));
    }
    Ok(())
}

pub(crate) fn password(
    pg: &Shared,
    ctx: &mut Ctx<'_>,
    method: &Method,
    id: &str,
    body: &[u8],
) -> Result<Reply, SfError> {
    let ui = ctx.db.schema.index_of("User").ok_or_else(SfError::not_found)?;
    records::live_row(ctx.db, ui, id)?;
    let id = records::normalize_id(id).unwrap_or_default();
    let own = id == ctx.caller.id;
    if !ctx.caller.admin && (!own || *method != Method::GET) {
        return Err(SfError::new(
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_ACCESS",
            "You do not have permission to view this record.",
        ));
    }
    // Users created through the API join the login table before their first password.
    pg.sync_users_from_db(ctx.db);
    // A new password changes the User record's LastPasswordChangeDate: an UPDATE change event.
    // UNCONFIRMED: that Salesforce publishes it, and with this field alone (no LastModifiedDate).
    let set = |ctx: &mut Ctx<'_>, new: &str| -> Result<(), SfError> {
        let mut rt = pg.rt();
        if let Some(u) = rt.users.iter_mut().find(|u| u.id == id) {
            u.password = new.to_owned();
        }
        drop(rt);
        let Some(fi) = ctx.db.schema.objects[ui].field_index("LastPasswordChangeDate") else { return Ok(()) };
        let values = vec![(fi, Sql::Text(crate::civil::format_datetime(ctx.now)))];
        ctx.db.update_row(ui, &id, &values)?;
        ctx.changes.push(crate::events::Change {
            object: ui,
            id: id.clone(),
            kind: crate::events::ChangeKind::Update,
            values,
        });
        Ok(())
    };
    match *method {
        Method::GET => Ok(Reply::json(StatusCode::OK, &json!({"isExpired": false}))),
        Method::POST => {
            let b = json_object(body)?;
            let Some(Value::String(new)) = b.get("NewPassword") else {
                return Err(SfError::bad("REQUIRED_FIELD_MISSING", "Required fields are missing: [NewPassword]")
                    .with_fields(vec!["NewPassword".into()]));
            };
            policy(new)?;
            set(ctx, new)?;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        Method::DELETE => {
            // UNCONFIRMED: the key of the generated password in the body (`NewPassword`).
            let new = format!("{}7a", crate::state::random_chars(10));
            set(ctx, &new)?;
            Ok(Reply::json(StatusCode::OK, &json!({"NewPassword": new})))
        }
        _ => Err(SfError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are GET,POST,DELETE"),
        )),
    }
}
