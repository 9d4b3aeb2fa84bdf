//! The records every playground org starts with: the Organization, the seed's users (same ids
//! as their logins) with one UserLogin each, their profiles, permission sets (one owned by each
//! profile, plus a few standalone ones), assignments, permission set licences and package
//! licences, so user-administration workflows have something to remove.

use rusqlite::types::Value as Sql;

use super::records;
use super::request::{Ctx, SfError};
use crate::call::{Caller, Version};
use crate::civil;
use crate::seed::Seed;
use crate::store::Db;

fn t(s: &str) -> Sql {
    Sql::Text(s.to_owned())
}
fn b(v: bool) -> Sql {
    Sql::Integer(i64::from(v))
}
fn i(v: i64) -> Sql {
    Sql::Integer(v)
}

fn put(ctx: &mut Ctx<'_>, object: &str, pairs: &[(&str, Sql)]) -> Result<String, SfError> {
    let oi = ctx.db.schema.index_of(object).ok_or_else(|| SfError::internal(format!("no object {object}")))?;
    let o = &ctx.db.schema.objects[oi];
    let mut values = Vec::new();
    for (name, v) in pairs {
        let fi = o.field_index(name).ok_or_else(|| SfError::internal(format!("no field {object}.{name}")))?;
        values.push((fi, v.clone()));
    }
    records::system_insert(ctx, oi, &mut values)
}

/// Fills an empty database with the org's own records. Does nothing when the data file
/// already holds them.
pub(crate) fn populate(db: &mut Db, seed: &Seed, org_id: &str, now: i64) -> Result<(), String> {
    let users = db.schema.index_of("User").ok_or("no User object")?;
    if db.count(users, true).map_err(|e| e.to_string())? > 0 {
        return Ok(());
    }
    let admin_id = crate::ids::mint("005", 1);
    let version = Version::parse(&format!("v{}", crate::call::LATEST_API_VERSION)).ok_or("bad latest version")?;
    let mut ctx = Ctx {
        db,
        caller: Caller { id: admin_id.clone(), admin: true },
        version,
        now,
        users_changed: false,
        update_only: false,
        // The org's starting records are not changes anyone subscribed to.
        changes: Vec::new(),
        allow_duplicates: true,
    };
    fill(&mut ctx, seed, org_id).map_err(|e| e.message)
}

fn fill(ctx: &mut Ctx<'_>, seed: &Seed, org_id: &str) -> Result<(), SfError> {
    // The Organization keeps the org id the OAuth side hands out.
    let org = ctx.db.schema.index_of("Organization").ok_or_else(|| SfError::internal("no Organization"))?;
    let o = &ctx.db.schema.objects[org];
    let now = civil::format_datetime(ctx.now);
    let mut values = Vec::new();
    for (name, v) in [
        ("Id", t(org_id)),
        ("IsDeleted", b(false)),
        ("Name", t(&seed.org.name)),
        ("Country", t("US")),
        ("DefaultLocaleSidKey", t("en_US")),
        ("LanguageLocaleKey", t("en_US")),
        ("TimeZoneSidKey", t("America/Los_Angeles")),
        ("OrganizationType", t("Developer Edition")),
        ("InstanceName", t("PG1")),
        ("IsSandbox", b(false)),
        ("CreatedDate", t(&now)),
        ("LastModifiedDate", t(&now)),
        ("SystemModstamp", t(&now)),
    ] {
        if let Some(fi) = o.field_index(name) {
            values.push((fi, v));
        }
    }
    ctx.db.insert_row(org, 1, &values)?;

    let mut profiles: Vec<String> = vec!["System Administrator".into(), "Standard User".into()];
    for u in &seed.users {
        if !profiles.iter().any(|p| p.eq_ignore_ascii_case(&u.profile)) {
            profiles.push(u.profile.clone());
        }
    }
    let mut profile_ids = Vec::new();
    let mut owned_sets = Vec::new();
    for p in &profiles {
        let pid = put(ctx, "Profile", &[("Name", t(p)), ("UserType", t("Standard"))])?;
        let admin = p == "System Administrator";
        let api_name: String = p.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let ps = put(
            ctx,
            "PermissionSet",
            &[
                ("Name", t(&format!("X00e{}", &api_name[..api_name.len().min(30)]))),
                ("Label", t(&format!("{p} (profile)"))),
                ("IsOwnedByProfile", b(true)),
                ("ProfileId", t(&pid)),
                ("Type", t("Profile")),
                ("PermissionsApiEnabled", b(true)),
                ("PermissionsModifyAllData", b(admin)),
                ("PermissionsViewAllData", b(admin)),
                ("PermissionsManageUsers", b(admin)),
            ],
        )?;
        profile_ids.push(pid);
        owned_sets.push(ps);
    }
    let mut standalone = Vec::new();
    for (name, label) in
        [("Sales_Operations", "Sales Operations"), ("API_Access", "API Access"), ("Report_Viewer", "Report Viewer")]
    {
        standalone.push(put(
            ctx,
            "PermissionSet",
            &[
                ("Name", t(name)),
                ("Label", t(label)),
                ("IsCustom", b(true)),
                ("Type", t("Regular")),
                ("PermissionsApiEnabled", b(true)),
            ],
        )?);
    }
    let cpq = put(
        ctx,
        "PermissionSetLicense",
        &[
            ("MasterLabel", t("Salesforce CPQ License")),
            ("DeveloperName", t("SalesforceCPQ_CPQStandardPerm")),
            ("Status", t("Active")),
            ("TotalLicenses", i(50)),
            ("UsedLicenses", i(1)),
        ],
    )?;
    put(
        ctx,
        "PermissionSetLicense",
        &[
            ("MasterLabel", t("Einstein Analytics Plus")),
            ("DeveloperName", t("EinsteinAnalyticsPlusPsl")),
            ("Status", t("Active")),
            ("TotalLicenses", i(10)),
            ("UsedLicenses", i(0)),
        ],
    )?;
    let sbqq = put(
        ctx,
        "PackageLicense",
        &[
            ("NamespacePrefix", t("SBQQ")),
            ("AllowedLicenses", i(50)),
            ("UsedLicenses", i(1)),
            ("Status", t("Active")),
            ("IsProvisioned", b(true)),
        ],
    )?;
    put(
        ctx,
        "PackageLicense",
        &[
            ("NamespacePrefix", t("dlrs")),
            ("AllowedLicenses", i(-1)),
            ("UsedLicenses", i(0)),
            ("Status", t("Free")),
            ("IsProvisioned", b(true)),
        ],
    )?;

    for (n, u) in seed.users.iter().enumerate() {
        let pi = profiles.iter().position(|p| p.eq_ignore_ascii_case(&u.profile)).unwrap_or(1);
        let alias: String =
            format!("{}{}", u.first_name.chars().next().unwrap_or('u'), u.last_name).chars().take(8).collect();
        let id = put(
            ctx,
            "User",
            &[
                ("Username", t(&u.username)),
                ("FirstName", if u.first_name.is_empty() { Sql::Null } else { t(&u.first_name) }),
                ("LastName", t(&u.last_name)),
                ("Email", t(&u.email)),
                ("Alias", t(&alias.to_ascii_lowercase())),
                ("CommunityNickname", t(&format!("{}{}", alias.to_ascii_lowercase(), n + 1))),
                ("IsActive", b(u.active)),
                ("TimeZoneSidKey", t(&u.time_zone)),
                ("LocaleSidKey", t(&u.locale)),
                ("EmailEncodingKey", t("UTF-8")),
                ("LanguageLocaleKey", t("en_US")),
                ("ProfileId", t(&profile_ids[pi])),
                ("UserType", t("Standard")),
            ],
        )?;
        debug_assert_eq!(id, crate::ids::mint("005", n as u64 + 1));
        put(ctx, "UserLogin", &[("UserId", t(&id)), ("IsFrozen", b(u.frozen)), ("IsPasswordLocked", b(false))])?;
        put(ctx, "PermissionSetAssignment", &[("AssigneeId", t(&id)), ("PermissionSetId", t(&owned_sets[pi]))])?;
        // Everyone but the administrator carries removable entitlements.
        if n > 0 {
            put(ctx, "PermissionSetAssignment", &[("AssigneeId", t(&id)), ("PermissionSetId", t(&standalone[0]))])?;
            put(ctx, "PermissionSetLicenseAssign", &[("AssigneeId", t(&id)), ("PermissionSetLicenseId", t(&cpq))])?;
            put(ctx, "UserPackageLicense", &[("UserId", t(&id)), ("PackageLicenseId", t(&sbqq))])?;
        } else {
            put(ctx, "PermissionSetAssignment", &[("AssigneeId", t(&id)), ("PermissionSetId", t(&standalone[1]))])?;
        }
    }
    Ok(())
}
