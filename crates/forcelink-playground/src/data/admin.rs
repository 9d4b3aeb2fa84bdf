//! What an administrator does in Setup rather than through the API, offered by the control API:
//! restoring records from the recycle bin, and activating, deactivating, freezing and
//! unfreezing users. Each call is one transaction; its change events name the org's first
//! System Administrator (one who can sign in, if any) as `commitUser` and carry an empty
//! `changeOrigin`.
//!
//! UNCONFIRMED: Salesforce documents `changeOrigin` as set for API clients and empty
//! otherwise; which administrator a Setup change names is the one signed in, here the first.

use rusqlite::types::Value as Sql;

use super::records;
use super::request::{Ctx, SfError};
use crate::call::{Caller, LATEST_API_VERSION, Version};
use crate::state::Shared;

/// `changeOrigin` of changes made in Setup.
const SETUP_ORIGIN: &str = "";

/// The administrator Setup changes are made as: the first System Administrator who can sign
/// in, else the first one at all (the control API works even when every admin is frozen).
fn setup_admin(pg: &Shared) -> Option<Caller> {
    let rt = pg.rt();
    let admins = || rt.users.iter().filter(|u| u.profile == "System Administrator");
    admins().find(|u| u.can_log_in()).or_else(|| admins().next()).map(|u| Caller { id: u.id.clone(), admin: true })
}

/// Runs `f` as one transaction of the Setup administrator and publishes its change events.
fn as_admin<T>(pg: &Shared, f: impl FnOnce(&mut Ctx<'_>) -> Result<T, SfError>) -> Result<T, SfError> {
    let caller =
        setup_admin(pg).ok_or_else(|| SfError::bad("INSUFFICIENT_ACCESS", "the org has no System Administrator"))?;
    let version = Version::parse(&format!("v{LATEST_API_VERSION}"))
        .ok_or_else(|| SfError::internal("the latest API version does not parse"))?;
    let now = pg.now_ms();
    let mut db = pg.data.store.lock();
    let mut ctx = Ctx {
        db: &mut db,
        caller,
        version,
        now,
        users_changed: false,
        update_only: false,
        changes: Vec::new(),
        allow_duplicates: false,
    };
    let out = ctx.db_atomic(f);
    let changes = std::mem::take(&mut ctx.changes);
    crate::events::emit(&pg.events, now, SETUP_ORIGIN, &ctx.caller.id, changes);
    out
}

/// Restores records from the recycle bin (and the records deleted along with them); returns
/// the ids restored. Refused as a whole when one id is unknown, live, or went with a parent.
pub(crate) fn undelete(pg: &Shared, ids: &[String]) -> Result<Vec<String>, SfError> {
    as_admin(pg, |ctx| records::undelete(ctx, ids))
}

/// Writes a user's active and frozen flags into `User.IsActive` and `UserLogin.IsFrozen` as
/// Setup does: an UPDATE of each record whose value changes, nothing for the others.
pub(crate) fn set_user_flags(
    pg: &Shared,
    user_id: &str,
    active: Option<bool>,
    frozen: Option<bool>,
) -> Result<(), SfError> {
    as_admin(pg, |ctx| {
        let schema = ctx.db.schema.clone();
        let bool_update = |ctx: &mut Ctx<'_>, object: &str, id: &str, field: &str, want: bool| {
            let oi = schema.index_of(object).ok_or_else(|| SfError::internal(format!("no {object}")))?;
            let fi = schema.objects[oi].field_index(field).ok_or_else(|| SfError::internal(format!("no {field}")))?;
            let row = records::live_row(ctx.db, oi, id)?;
            if matches!(row[fi], Sql::Integer(1)) == want {
                return Ok(());
            }
            records::apply_update(ctx, oi, id, &row, &mut vec![(fi, Sql::Integer(i64::from(want)))])
        };
        if let Some(a) = active {
            bool_update(ctx, "User", user_id, "IsActive", a)?;
        }
        if let Some(f) = frozen
            && let Some(li) = schema.index_of("UserLogin")
        {
            let login = ctx.db.ids_where(li, "UserId", &Sql::Text(user_id.to_owned()), 1)?;
            if let Some(login) = login.first() {
                bool_update(ctx, "UserLogin", login, "IsFrozen", f)?;
            }
        }
        Ok(())
    })
}
