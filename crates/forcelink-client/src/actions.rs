//! The workflow "cards": user administration and document upload. Each action takes a typed
//! input (serde, JSON in) and returns a typed output (JSON out); [`run`] dispatches by name for
//! the broker and the CLI. They are idempotent where Salesforce allows: creating a user whose
//! username exists reports it instead of failing, (de)activating or (un)freezing reports
//! whether anything changed, removing entitlements twice removes nothing the second time.
//! Resetting a password and uploading a document are not idempotent (each makes something new).
//!
//! The user-administration actions need the System Administrator profile (or "Manage Users");
//! without it Salesforce answers `INSUFFICIENT_ACCESS…`, reported as
//! [`ClientError::InsufficientRights`] with what is missing.
//!
//! A user is named by id (`005…`) or by username (anything with an `@`).

use std::fmt;

use forcelink_auth::secret::Password;
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

mod document;

pub use document::{DocumentUploaded, MAX_MULTIPART_FILE_BYTES, UploadDocument, UploadFile, UploadProgress};

use crate::client::{Client, Req};
use crate::error::{ApiError, ClientError};
use crate::soql::{Condition, Select};
use crate::types::RecordId;

/// What the user-administration actions need.
pub const ADMIN_RIGHTS: &str =
    "the System Administrator profile, or the \"Manage Users\" and \"View Setup and Configuration\" permissions";
/// Files up to this size are sent as base64 in JSON; larger ones as multipart/form-data.
/// Defaults to 10 MiB (Salesforce accepts about 37.5 MB of base64 in JSON, 2 GB multipart).
pub const DEFAULT_MULTIPART_THRESHOLD: usize = 10 * 1024 * 1024;
/// `TimeZoneSidKey` a new user gets when the input names none (Salesforce requires the
/// four locale settings on every user).
pub const DEFAULT_TIME_ZONE: &str = "America/Los_Angeles";
/// `LocaleSidKey` a new user gets when the input names none.
pub const DEFAULT_LOCALE: &str = "en_US";
/// `EmailEncodingKey` a new user gets when the input names none.
pub const DEFAULT_EMAIL_ENCODING: &str = "UTF-8";
/// `LanguageLocaleKey` a new user gets when the input names none.
pub const DEFAULT_LANGUAGE: &str = "en_US";

fn rights(action: &'static str) -> impl Fn(ClientError) -> ClientError {
    move |e| match e {
        ClientError::Api { error, .. }
            if matches!(
                error.error_code.as_str(),
                "INSUFFICIENT_ACCESS" | "INSUFFICIENT_ACCESS_OR_READONLY" | "INSUFFICIENT_PRIVILEGES"
            ) =>
        {
            ClientError::InsufficientRights { action, needs: ADMIN_RIGHTS, error }
        }
        other => other,
    }
}

fn one_id(page: &crate::query::Page<Value>, what: &str) -> Result<Option<String>, ClientError> {
    match page.records.as_slice() {
        [] => Ok(None),
        [r] => Ok(r["Id"].as_str().map(str::to_owned)),
        _ => Err(ClientError::InvalidInput(format!("{what} matches {} records", page.records.len()))),
    }
}

/// Resolves a user given as id or username.
async fn user_id(client: &Client, user: &str) -> Result<RecordId, ClientError> {
    if !user.contains('@') {
        let id = RecordId::new(user)?;
        if id.key_prefix() != "005" {
            return Err(ClientError::InvalidInput(format!("{user} is not a user id (005…)")));
        }
        return Ok(id);
    }
    let q = Select::from("User").filter(Condition::eq("Username", user)).build()?;
    let page = client.query(q).send().await?;
    let id = one_id(&page, user)?.ok_or_else(|| ClientError::InvalidInput(format!("no user with username {user}")))?;
    RecordId::new(id)
}

/// `create-user` input. Salesforce's required fields, with defaults for the locale settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Email-shaped and unique across every Salesforce org.
    pub username: String,
    /// `LastName` (required).
    pub last_name: String,
    /// `FirstName`.
    #[serde(default)]
    pub first_name: Option<String>,
    /// `Email` (required).
    pub email: String,
    /// At most 8 characters; derived from the names when absent.
    #[serde(default)]
    pub alias: Option<String>,
    /// The profile by id, or by name with `profile_name` (one is required).
    #[serde(default)]
    pub profile_id: Option<String>,
    /// The profile by `Profile.Name` (e.g. `Standard User`), used when `profile_id` is absent.
    #[serde(default)]
    pub profile_name: Option<String>,
    /// `TimeZoneSidKey`. Defaults to [`DEFAULT_TIME_ZONE`].
    #[serde(default)]
    pub time_zone_sid_key: Option<String>,
    /// `LocaleSidKey`. Defaults to [`DEFAULT_LOCALE`].
    #[serde(default)]
    pub locale_sid_key: Option<String>,
    /// `EmailEncodingKey`. Defaults to [`DEFAULT_EMAIL_ENCODING`].
    #[serde(default)]
    pub email_encoding_key: Option<String>,
    /// `LanguageLocaleKey`. Defaults to [`DEFAULT_LANGUAGE`].
    #[serde(default)]
    pub language_locale_key: Option<String>,
    /// Further User fields, by API name.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

/// What `create-user` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    /// The user's id (`005…`), new or existing.
    pub user_id: String,
    /// False when a user with this username already existed (nothing was changed).
    pub created: bool,
}

/// `update-user` input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// Id or username.
    pub user: String,
    /// User fields by API name.
    pub fields: Map<String, Value>,
}

/// What `update-user` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdated {
    /// The updated user's id (`005…`).
    pub user_id: String,
    /// The API names of the fields that were set.
    pub fields: Vec<String>,
}

/// Input of activate, deactivate, freeze, unfreeze and remove-entitlements.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    /// Id or username.
    pub user: String,
}

/// What activate / deactivate did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveState {
    /// The user's id (`005…`).
    pub user_id: String,
    /// `User.IsActive` after the action.
    pub is_active: bool,
    /// False when the user already was in that state.
    pub changed: bool,
}

/// What freeze / unfreeze did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenState {
    /// The user's id (`005…`).
    pub user_id: String,
    /// The id of the user's `UserLogin` record, which holds the frozen flag.
    pub user_login_id: String,
    /// `UserLogin.IsFrozen` after the action.
    pub is_frozen: bool,
    /// False when the login already was in that state.
    pub changed: bool,
}

/// One entitlement that could not be removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalFailure {
    /// The entitlement's sObject type (e.g. `PermissionSetAssignment`).
    pub object: String,
    /// The record id that could not be deleted.
    pub id: String,
    /// Salesforce's errors for that record.
    pub errors: Vec<ApiError>,
}

/// What remove-entitlements removed (record ids by kind) and what it could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementsRemoved {
    /// The user's id (`005…`).
    pub user_id: String,
    /// Deleted `PermissionSetAssignment` record ids.
    pub permission_set_assignments: Vec<String>,
    /// Deleted `PermissionSetLicenseAssign` record ids.
    pub permission_set_licenses: Vec<String>,
    /// Deleted `UserPackageLicense` record ids.
    pub package_licenses: Vec<String>,
    /// The records Salesforce refused to delete.
    pub failures: Vec<RemovalFailure>,
}

fn secret_out<S: Serializer>(p: &Option<Password>, s: S) -> Result<S::Ok, S::Error> {
    p.as_ref().map(Password::secret).serialize(s)
}
fn secret_in<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Password>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Password::new))
}

/// `reset-password` input: sets `new_password`, or without it has Salesforce generate one.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// Id or username.
    pub user: String,
    /// The new password; `None` has Salesforce generate one.
    #[serde(default, serialize_with = "secret_out", deserialize_with = "secret_in")]
    pub new_password: Option<Password>,
}

impl fmt::Debug for ResetPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetPassword").field("user", &self.user).field("new_password", &self.new_password).finish()
    }
}

/// What reset-password did. The generated password is in the JSON output (it is the point of
/// the action) but never in `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct PasswordReset {
    /// The user's id (`005…`).
    pub user_id: String,
    /// The password Salesforce generated; `None` when the input set one.
    #[serde(default, serialize_with = "secret_out", deserialize_with = "secret_in")]
    pub generated_password: Option<Password>,
}

impl fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordReset")
            .field("user_id", &self.user_id)
            .field("generated_password", &self.generated_password)
            .finish()
    }
}

/// The actions, by the names [`run`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionName {
    /// `create-user`: [`Actions::create_user`].
    CreateUser,
    /// `update-user`: [`Actions::update_user`].
    UpdateUser,
    /// `activate-user`: [`Actions::set_active`] with `true`.
    ActivateUser,
    /// `deactivate-user`: [`Actions::set_active`] with `false`.
    DeactivateUser,
    /// `freeze-user`: [`Actions::set_frozen`] with `true`.
    FreezeUser,
    /// `unfreeze-user`: [`Actions::set_frozen`] with `false`.
    UnfreezeUser,
    /// `remove-user-entitlements`: [`Actions::remove_entitlements`].
    RemoveEntitlements,
    /// `reset-password`: [`Actions::reset_password`].
    ResetPassword,
    /// `upload-document`: [`Actions::upload_document`].
    UploadDocument,
}

impl ActionName {
    /// Every action, in declaration order.
    pub const ALL: [ActionName; 9] = [
        ActionName::CreateUser,
        ActionName::UpdateUser,
        ActionName::ActivateUser,
        ActionName::DeactivateUser,
        ActionName::FreezeUser,
        ActionName::UnfreezeUser,
        ActionName::RemoveEntitlements,
        ActionName::ResetPassword,
        ActionName::UploadDocument,
    ];
    /// The name [`run`], the broker and the CLI know the action by (`create-user`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionName::CreateUser => "create-user",
            ActionName::UpdateUser => "update-user",
            ActionName::ActivateUser => "activate-user",
            ActionName::DeactivateUser => "deactivate-user",
            ActionName::FreezeUser => "freeze-user",
            ActionName::UnfreezeUser => "unfreeze-user",
            ActionName::RemoveEntitlements => "remove-user-entitlements",
            ActionName::ResetPassword => "reset-password",
            ActionName::UploadDocument => "upload-document",
        }
    }
}

impl std::str::FromStr for ActionName {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Self, ClientError> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|a| a.as_str()).collect();
            ClientError::InvalidInput(format!("unknown action {s:?}; known: {}", names.join(", ")))
        })
    }
}

/// Runs an action from JSON input to JSON output (for the broker and the CLI).
pub async fn run(client: &Client, action: ActionName, input: Value) -> Result<Value, ClientError> {
    fn parse<T: for<'de> Deserialize<'de>>(action: ActionName, v: Value) -> Result<T, ClientError> {
        serde_json::from_value(v).map_err(|e| ClientError::InvalidInput(format!("{} input: {e}", action.as_str())))
    }
    fn out<T: Serialize>(v: T) -> Result<Value, ClientError> {
        serde_json::to_value(v).map_err(|e| ClientError::InvalidInput(e.to_string()))
    }
    let a = client.actions();
    match action {
        ActionName::CreateUser => out(a.create_user(parse(action, input)?).await?),
        ActionName::UpdateUser => out(a.update_user(parse(action, input)?).await?),
        ActionName::ActivateUser => out(a.set_active(&parse::<UserRef>(action, input)?.user, true).await?),
        ActionName::DeactivateUser => out(a.set_active(&parse::<UserRef>(action, input)?.user, false).await?),
        ActionName::FreezeUser => out(a.set_frozen(&parse::<UserRef>(action, input)?.user, true).await?),
        ActionName::UnfreezeUser => out(a.set_frozen(&parse::<UserRef>(action, input)?.user, false).await?),
        ActionName::RemoveEntitlements => out(a.remove_entitlements(&parse::<UserRef>(action, input)?.user).await?),
        ActionName::ResetPassword => out(a.reset_password(parse(action, input)?).await?),
        ActionName::UploadDocument => out(a.upload_document(parse(action, input)?).await?),
    }
}

impl Client {
    /// The workflow actions.
    pub fn actions(&self) -> Actions<'_> {
        Actions { client: self, multipart_threshold: DEFAULT_MULTIPART_THRESHOLD }
    }
}

/// See [`Client::actions`].
#[derive(Debug, Clone, Copy)]
pub struct Actions<'c> {
    client: &'c Client,
    multipart_threshold: usize,
}

fn alias_from(first: Option<&str>, last: &str) -> String {
    let mut a: String = first.and_then(|f| f.chars().find(|c| c.is_alphanumeric())).into_iter().collect();
    a.extend(last.chars().filter(|c| c.is_alphanumeric()).take(8 - a.len()));
    if a.is_empty() { "user".to_owned() } else { a.to_lowercase() }
}

impl Actions<'_> {
    /// Files larger than this go multipart. Defaults to [`DEFAULT_MULTIPART_THRESHOLD`].
    pub fn multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// Creates a user; an existing user with the same username is reported, not changed.
    pub async fn create_user(&self, input: CreateUser) -> Result<UserCreated, ClientError> {
        let c = self.client;
        let why = rights("create user");
        let q = Select::from("User").filter(Condition::eq("Username", input.username.as_str())).build()?;
        if let Some(id) = one_id(&c.query(q).send().await.map_err(&why)?, &input.username)? {
            return Ok(UserCreated { user_id: id, created: false });
        }
        let profile_id = match (&input.profile_id, &input.profile_name) {
            (Some(id), _) => RecordId::new(id.as_str())?.to_string(),
            (None, Some(name)) => {
                let q = Select::from("Profile").filter(Condition::eq("Name", name.as_str())).build()?;
                one_id(&c.query(q).send().await.map_err(&why)?, name)?
                    .ok_or_else(|| ClientError::InvalidInput(format!("no profile named {name:?}")))?
            }
            (None, None) => {
                return Err(ClientError::InvalidInput("name the profile: profile_id or profile_name".into()));
            }
        };
        let alias = input.alias.clone().unwrap_or_else(|| alias_from(input.first_name.as_deref(), &input.last_name));
        let mut body = input.fields.clone();
        let mut put = |k: &str, v: Value| {
            body.insert(k.to_owned(), v);
        };
        put("Username", json!(input.username));
        put("LastName", json!(input.last_name));
        if let Some(f) = &input.first_name {
            put("FirstName", json!(f));
        }
        put("Email", json!(input.email));
        put("Alias", json!(alias));
        put("ProfileId", json!(profile_id));
        put("TimeZoneSidKey", json!(input.time_zone_sid_key.as_deref().unwrap_or(DEFAULT_TIME_ZONE)));
        put("LocaleSidKey", json!(input.locale_sid_key.as_deref().unwrap_or(DEFAULT_LOCALE)));
        put("EmailEncodingKey", json!(input.email_encoding_key.as_deref().unwrap_or(DEFAULT_EMAIL_ENCODING)));
        put("LanguageLocaleKey", json!(input.language_locale_key.as_deref().unwrap_or(DEFAULT_LANGUAGE)));
        let created = c.sobject("User")?.create(&Value::Object(body)).send().await.map_err(&why)?;
        Ok(UserCreated { user_id: created.id.to_string(), created: true })
    }

    /// Sets the given User fields (at least one) on a user named by id or username.
    pub async fn update_user(&self, input: UpdateUser) -> Result<UserUpdated, ClientError> {
        let why = rights("update user");
        let id = user_id(self.client, &input.user).await.map_err(&why)?;
        if input.fields.is_empty() {
            return Err(ClientError::InvalidInput("update-user needs at least one field".into()));
        }
        self.client.sobject("User")?.update(&id, &input.fields)?.send().await.map_err(&why)?;
        Ok(UserUpdated { user_id: id.to_string(), fields: input.fields.keys().cloned().collect() })
    }

    /// Activates (`true`) or deactivates (`false`) a user (`User.IsActive`).
    pub async fn set_active(&self, user: &str, active: bool) -> Result<ActiveState, ClientError> {
        let why = rights(if active { "activate user" } else { "deactivate user" });
        let c = self.client;
        let id = user_id(c, user).await.map_err(&why)?;
        let users = c.sobject("User")?;
        let now = users.retrieve(&id)?.fields(["IsActive"])?.send().await.map_err(&why)?;
        let changed = now["IsActive"].as_bool() != Some(active);
        if changed {
            users.update(&id, &json!({"IsActive": active}))?.send().await.map_err(&why)?;
        }
        Ok(ActiveState { user_id: id.to_string(), is_active: active, changed })
    }

    /// Freezes (`true`) or unfreezes a user's login (`UserLogin.IsFrozen`, API 29.0+).
    pub async fn set_frozen(&self, user: &str, frozen: bool) -> Result<FrozenState, ClientError> {
        let why = rights(if frozen { "freeze user" } else { "unfreeze user" });
        let c = self.client;
        let id = user_id(c, user).await.map_err(&why)?;
        let q = Select::from("UserLogin")
            .fields(["Id", "IsFrozen"])
            .filter(Condition::eq("UserId", id.as_str()))
            .build()?;
        let page = c.query(q).send().await.map_err(&why)?;
        let row = page.records.first().ok_or_else(|| {
            ClientError::InvalidInput(format!("user {id} has no UserLogin row (never logged in, or not visible)"))
        })?;
        let login = row["Id"].as_str().unwrap_or_default().to_owned();
        let changed = row["IsFrozen"].as_bool() != Some(frozen);
        if changed {
            c.sobject("UserLogin")?.update(&login, &json!({"IsFrozen": frozen}))?.send().await.map_err(&why)?;
        }
        Ok(FrozenState { user_id: id.to_string(), user_login_id: login, is_frozen: frozen, changed })
    }

    /// Removes the user's permission set assignments (except those owned by the profile,
    /// which Salesforce refuses to delete), permission set licence assignments and package
    /// licences, in that order (assignments first: a licence in use cannot be removed).
    pub async fn remove_entitlements(&self, user: &str) -> Result<EntitlementsRemoved, ClientError> {
        let why = rights("remove user entitlements");
        let c = self.client;
        let id = user_id(c, user).await.map_err(&why)?;
        let mut out = EntitlementsRemoved {
            user_id: id.to_string(),
            permission_set_assignments: Vec::new(),
            permission_set_licenses: Vec::new(),
            package_licenses: Vec::new(),
            failures: Vec::new(),
        };
        let kinds = [
            (
                "PermissionSetAssignment",
                Select::from("PermissionSetAssignment")
                    .filter(Condition::eq("AssigneeId", id.as_str()))
                    .filter(Condition::eq("PermissionSet.IsOwnedByProfile", false)),
            ),
            (
                "PermissionSetLicenseAssign",
                Select::from("PermissionSetLicenseAssign").filter(Condition::eq("AssigneeId", id.as_str())),
            ),
            ("UserPackageLicense", Select::from("UserPackageLicense").filter(Condition::eq("UserId", id.as_str()))),
        ];
        for (i, (object, select)) in kinds.into_iter().enumerate() {
            let ids: Vec<String> = {
                use futures_util::TryStreamExt;
                let recs: Vec<Value> = c.query(select.build()?).stream().try_collect().await.map_err(&why)?;
                recs.iter().filter_map(|r| r["Id"].as_str().map(str::to_owned)).collect()
            };
            if ids.is_empty() {
                continue;
            }
            let results = c.collections().delete(&ids).send().await.map_err(&why)?;
            for (rid, r) in ids.into_iter().zip(results) {
                if r.success {
                    [&mut out.permission_set_assignments, &mut out.permission_set_licenses, &mut out.package_licenses]
                        [i]
                        .push(rid);
                } else {
                    out.failures.push(RemovalFailure { object: object.to_owned(), id: rid, errors: r.errors });
                }
            }
        }
        // Missing rights are not a partial result: say so as for every other admin action.
        let denied = out.failures.iter().flat_map(|f| &f.errors).find(|e| {
            matches!(
                e.error_code.as_str(),
                "INSUFFICIENT_ACCESS" | "INSUFFICIENT_ACCESS_OR_READONLY" | "INSUFFICIENT_PRIVILEGES"
            )
        });
        if let Some(e) = denied {
            return Err(ClientError::InsufficientRights {
                action: "remove user entitlements",
                needs: ADMIN_RIGHTS,
                error: ApiError { status: 403, ..e.clone() },
            });
        }
        Ok(out)
    }

    /// Sets the password (`POST …/password`), or resets it to one Salesforce generates
    /// (`DELETE …/password`, returned in the output).
    pub async fn reset_password(&self, input: ResetPassword) -> Result<PasswordReset, ClientError> {
        let why = rights("reset password");
        let c = self.client;
        let id = user_id(c, &input.user).await.map_err(&why)?;
        let segments = ["sobjects", "User", id.as_str(), "password"];
        match &input.new_password {
            Some(p) => {
                let req = Req::data(Method::POST, segments).json(&json!({"NewPassword": p.secret()}))?;
                c.execute(req).await.map_err(&why)?;
                Ok(PasswordReset { user_id: id.to_string(), generated_password: None })
            }
            None => {
                // Not idempotent: a retry would generate (and lose) another password.
                let req = Req::data(Method::DELETE, segments).idempotency(crate::client::Idempotency::NotIdempotent);
                let resp = c.execute(req).await.map_err(&why)?;
                // UNCONFIRMED: the key of the generated password (`NewPassword`).
                let body: Value = resp.json()?;
                let generated = body["NewPassword"].as_str().map(Password::new);
                Ok(PasswordReset { user_id: id.to_string(), generated_password: generated })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_but_in_the_output() {
        let r = PasswordReset { user_id: "005".into(), generated_password: Some(Password::new("Gen3rated!")) };
        assert!(!format!("{r:?}").contains("Gen3rated"));
        assert_eq!(serde_json::to_value(&r).unwrap()["generated_password"], "Gen3rated!");
        let input: ResetPassword =
            serde_json::from_value(json!({"user": "a@b.c", "new_password": "S3cret!!"})).unwrap();
        assert!(!format!("{input:?}").contains("S3cret"));
    }

    #[test]
    fn names_round_trip_and_aliases_fit() {
        for a in ActionName::ALL {
            assert_eq!(a.as_str().parse::<ActionName>().unwrap(), a);
        }
        assert!("drop-table".parse::<ActionName>().is_err());
        assert_eq!(alias_from(Some("Ada"), "Lovelace-Byron"), "alovelac");
        assert!(alias_from(None, "X").len() <= 8);
    }
}
