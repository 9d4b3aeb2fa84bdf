//! Logins follow the User and UserLogin records both ways: the API (and the control API) can
//! deactivate or freeze a user, create one that may then sign in, or reset the org.

use super::{Shared, User};
use crate::store::Db;

impl Shared {
    /// Makes logins follow the User and UserLogin rows (IsActive, IsFrozen), and lets users
    /// created through the API sign in once they have a password.
    pub(crate) fn sync_users_from_db(&self, db: &Db) {
        let Some(ui) = db.schema.index_of("User") else { return };
        let Some(li) = db.schema.index_of("UserLogin") else { return };
        let sql = format!(
            "SELECT u.\"Id\", u.\"IsActive\", COALESCE(l.\"IsFrozen\", 0), u.\"Username\", u.\"FirstName\", u.\"LastName\", u.\"Email\", \
             u.\"TimeZoneSidKey\", u.\"LocaleSidKey\", p.\"Name\" FROM {} u LEFT JOIN {} l ON l.\"UserId\" = u.\"Id\" \
             LEFT JOIN \"o_Profile\" p ON p.\"Id\" = u.\"ProfileId\"",
            db.schema.objects[ui].table(),
            db.schema.objects[li].table()
        );
        type Row = (
            String,
            bool,
            bool,
            String,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = match db.conn.prepare(&sql).and_then(|mut st| {
            st.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, Option<i64>>(1)?.unwrap_or(1) != 0,
                    r.get::<_, i64>(2)? != 0,
                    r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    r.get(4)?,
                    r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            })?
            .collect()
        }) {
            Ok(r) => r,
            Err(_) => return,
        };
        let mut rt = self.rt();
        for (id, active, frozen, username, first, last, email, tz, locale, profile) in rows {
            match rt.users.iter().position(|u| u.id == id) {
                Some(i) => {
                    let u = &mut rt.users[i];
                    u.active = active;
                    u.frozen = frozen;
                }
                None => rt.users.push(User {
                    id,
                    username,
                    // No password until one is set through the password resource; no security
                    // token, so the password grant takes the password alone.
                    password: String::new(),
                    security_token: String::new(),
                    profile: profile.unwrap_or_default(),
                    first_name: first.unwrap_or_default(),
                    last_name: last,
                    email,
                    time_zone: tz.unwrap_or_else(|| "America/Los_Angeles".into()),
                    locale: locale.unwrap_or_else(|| "en_US".into()),
                    active,
                    frozen,
                }),
            }
        }
    }

    /// Writes the logins' active and frozen flags into User and UserLogin.
    pub(crate) fn push_users_to_db(&self) {
        let users: Vec<(String, bool, bool)> =
            self.rt().users.iter().map(|u| (u.id.clone(), u.active, u.frozen)).collect();
        let db = self.data.store.lock();
        for (id, active, frozen) in users {
            let _ = db
                .conn
                .execute("UPDATE \"o_User\" SET \"IsActive\" = ?1 WHERE \"Id\" = ?2", rusqlite::params![active, id]);
            let _ = db.conn.execute(
                "UPDATE \"o_UserLogin\" SET \"IsFrozen\" = ?1 WHERE \"UserId\" = ?2",
                rusqlite::params![frozen, id],
            );
        }
    }
}
