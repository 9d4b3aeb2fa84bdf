//! The JSON bodies the API accepts and answers, as types: handlers build and return these, and
//! the OpenAPI document ([`crate::openapi`]) takes its schemas from the same types, so the two
//! cannot drift apart.
//!
//! Parts: health ([`Status`]), errors ([`ErrorBody`]), connections ([`ConnectionBody`] in,
//! [`ConnectionView`], [`ConnectionList`], [`Deleted`], [`TestAnswer`] out), the token
//! ([`TokenAnswer`], [`TokenQuery`]), API keys ([`crate::keys::NewKey`] in, [`ApiKeyView`],
//! [`CreatedApiKey`], [`ApiKeyList`], [`RevokedKey`] out) and actions (one input type per
//! action, [`action_inputs`]; [`ActionOutput`]). The action inputs mirror forcelink-client's
//! input structs (which the server parses) field by field, for the document only.

use std::borrow::Cow;

use forcelink_store::Method;
use forcelink_store::connection::FieldInfo;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

/// A connection name: what [`forcelink_store::connection::validate_name`] accepts.
pub(crate) const NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";

/// The URLs the document promises the server takes: https My Domain hosts, which the host rule
/// always allows. (The server takes more — the login and test hosts, origins allowed with
/// `--allow-origin` — but a fuzzer needs only values that are certainly accepted.)
pub(crate) const URL_PATTERN: &str = r"^https://[a-z0-9-]{1,40}\.my\.salesforce\.com$";

/// A Pub/Sub endpoint the document promises the server takes: Salesforce's (global or the EU
/// one) on its two ports, which the host rule always allows over TLS.
pub(crate) const PUBSUB_ENDPOINT_PATTERN: &str = r"^api(\.deu)?\.pubsub\.salesforce\.com:(443|7443)$";

/// A secret value: not an `env:`/`file:` reference, and not blank (blank means "not set").
pub(crate) const SECRET_PATTERN: &str = r"^(?!env:|file:)[\s\S]*\S[\s\S]*$";

/// A plain setting (client id, username, scope): not blank.
pub(crate) const TEXT_PATTERN: &str = r"^[\s\S]*\S[\s\S]*$";

/// An API version like `64.0`.
pub(crate) const API_VERSION_PATTERN: &str = r"^[0-9]{1,3}\.[0-9]$";

/// `GET /healthz` and `GET /readyz`: `ok`, `ready`, or (503) `unavailable` with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct Status {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code and a message saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// `unauthorized`, `forbidden`, `not_found`, `bad_request`, `conflict`, …
    pub code: String,
    pub message: String,
}

/// `GET /v1/connections/{name}/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct TokenAnswer {
    pub access_token: String,
    /// The org's origin, without a trailing slash.
    pub instance_url: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// RFC 3339.
    pub issued_at: String,
    /// RFC 3339; null when Salesforce did not say.
    pub expires_at: Option<String>,
    /// The token's fingerprint as the audit log shows it (never the token).
    pub fingerprint: String,
}

/// The token route's query.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub(crate) struct TokenQuery {
    /// An access token Salesforce refused, or its fingerprint: the broker renews instead of
    /// handing it out again.
    pub rejected: Option<String>,
}

/// The delete route's query.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub(crate) struct DeleteQuery {
    /// Revoke the tokens at Salesforce first (default true).
    pub revoke: Option<bool>,
}

/// A connection as the API shows it (secrets as `[stored]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ConnectionView {
    pub name: String,
    pub method: Option<String>,
    pub environment: Option<String>,
    /// The settings in forcelink's field names; secret values show as `[stored]`.
    #[schema(value_type = Object)]
    pub settings: Value,
    pub created_at: String,
    pub updated_at: String,
    pub token: TokenState,
    /// `healthy`, `unhealthy`, `reauthorization_required` (only a person signing in again fixes
    /// it) or `unknown` (never checked nor used), as every replica sees it.
    pub state: StateName,
    /// Why the connection is in its state.
    pub state_reason: Option<String>,
    /// What a person should do, when something is wrong.
    pub fix: Option<String>,
    /// RFC 3339: when the state began; null for a connection never checked nor used.
    pub state_since: Option<String>,
    /// What the background checks read.
    pub checks: ChecksView,
    pub health: HealthView,
    /// Counters of this broker process; null before the connection was first used.
    pub usage: Option<Usage>,
}

/// A connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateName {
    Healthy,
    Unhealthy,
    ReauthorizationRequired,
    Unknown,
}

impl From<forcelink_store::ConnectionState> for StateName {
    fn from(s: forcelink_store::ConnectionState) -> Self {
        use forcelink_store::ConnectionState as S;
        match s {
            S::Healthy => StateName::Healthy,
            S::Unhealthy => StateName::Unhealthy,
            S::ReauthorizationRequired => StateName::ReauthorizationRequired,
            S::Unknown => StateName::Unknown,
        }
    }
}

/// What the background checks and the token path recorded (on any replica).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub(crate) struct ChecksView {
    /// RFC 3339: the last background check.
    pub checked_at: Option<String>,
    /// RFC 3339, to within minutes: the last token hand-out or use through the broker.
    pub last_used: Option<String>,
    /// RFC 3339: when the stored token expires, when known.
    pub token_expires_at: Option<String>,
    /// Approvals (refresh tokens) of the connection's user and app in use, of `approvals_max`.
    pub approvals_used: Option<u32>,
    pub approvals_max: u32,
    /// `DailyApiRequests` at the last check.
    pub daily_api_requests: Option<LimitView>,
    /// Every limit the org reported at the last check.
    pub limits: Vec<LimitView>,
    /// The latest renewals, checks and sign-ins, newest first.
    pub recent: Vec<NoteView>,
}

/// One org limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct LimitView {
    pub name: String,
    pub max: i64,
    pub remaining: i64,
    /// 0 to 100.
    pub used_percent: f64,
}

/// A renewal, check or sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct NoteView {
    pub at: String,
    /// `renewal`, `check` or `sign-in`.
    pub kind: String,
    pub ok: bool,
    pub detail: String,
}

/// The stored token set, without the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct TokenState {
    pub signed_in: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_refresh_token: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_url: Option<String>,
}

/// What this broker saw of the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct HealthView {
    /// The last observation succeeded (or a valid token is stored); null when never used.
    pub ok: Option<bool>,
    pub last_ok: Option<String>,
    pub last_error: Option<LastError>,
}

/// The last failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct LastError {
    pub at: String,
    pub message: String,
}

/// This broker's counters for a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct Usage {
    pub tokens_handed_out: u64,
    pub proxied_requests: u64,
    pub actions: u64,
    /// The last `Sforce-Limit-Info` seen (`api-usage=18/15000`).
    pub salesforce_limit_info: Option<String>,
}

/// `GET /v1/connections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ConnectionList {
    pub connections: Vec<ConnectionView>,
}

/// `DELETE /v1/connections/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct Deleted {
    pub deleted: String,
    /// Whether the tokens were revoked at Salesforce; null when none were held or revocation
    /// was not asked for.
    pub revoked: Option<Revoked>,
}

/// The outcome of revoking a connection's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum Revoked {
    /// Salesforce answered; `false` when it had nothing to revoke.
    Done(bool),
    /// Revoking failed (the connection is deleted anyway).
    Failed { error: String },
}

/// `POST /v1/connections/{name}/test`: 200 when `ok`, 502 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct TestAnswer {
    pub ok: bool,
    pub detail: String,
    pub instance_url: String,
    pub api_version: String,
    pub token_issued_at: String,
}

/// An API key as the API shows it (no secret, no hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub connections: Vec<String>,
    pub scopes: Vec<String>,
    /// The key reads only (no tokens, `GET`/`HEAD`, MCP tools that change nothing).
    pub read_only: bool,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// `POST /v1/api-keys`: the key and its text, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct CreatedApiKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// `flk_<id>_<secret>`.
    pub key: String,
}

/// `GET /v1/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
}

/// `DELETE /v1/api-keys/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct RevokedKey {
    pub revoked: String,
}

// The `user` fields below take a user by id (`005…`, 15 or 18 characters) or by username
// (email-shaped); utoipa's `pattern` takes a literal only, so the pattern is written out each time.

/// `create-user` input (forcelink-client's `CreateUser`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUserInput {
    /// Email-shaped and unique across every Salesforce org.
    #[schema(pattern = r"^[^@\s]+@[^@\s]+$")]
    pub username: String,
    pub last_name: String,
    pub first_name: Option<String>,
    pub email: String,
    /// At most 8 characters; derived from the names when absent.
    pub alias: Option<String>,
    /// The profile by id, or by name with `profile_name` (one is required).
    pub profile_id: Option<String>,
    pub profile_name: Option<String>,
    pub time_zone_sid_key: Option<String>,
    pub locale_sid_key: Option<String>,
    pub email_encoding_key: Option<String>,
    pub language_locale_key: Option<String>,
    /// Further User fields, by API name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, Value>,
}

/// `update-user` input.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUserInput {
    #[schema(pattern = r"^(005[A-Za-z0-9]{12}([A-Za-z0-9]{3})?|[^@\s]+@[^@\s]+)$")]
    pub user: String,
    /// User fields by API name.
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, Value>,
}

/// Input of activate, deactivate, freeze, unfreeze and remove-entitlements: a user by id or
/// username.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserInput {
    #[schema(pattern = r"^(005[A-Za-z0-9]{12}([A-Za-z0-9]{3})?|[^@\s]+@[^@\s]+)$")]
    pub user: String,
}

/// `reset-password` input: sets `new_password`, or without it has Salesforce generate one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetPasswordInput {
    #[schema(pattern = r"^(005[A-Za-z0-9]{12}([A-Za-z0-9]{3})?|[^@\s]+@[^@\s]+)$")]
    pub user: String,
    pub new_password: Option<String>,
}

/// `upload-document` input: a new file, optionally linked to a record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadDocumentInput {
    pub title: String,
    /// The file name, with its extension.
    pub file_name: String,
    /// The content, base64.
    #[schema(pattern = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")]
    pub content_base64: String,
    /// A record to share the file with.
    pub link_to: Option<String>,
    /// `V` (viewer, the default), `C` (collaborator) or `I` (inferred).
    pub share_type: Option<String>,
    pub description: Option<String>,
}

/// An action's result: a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct ActionOutput(pub Value);

/// `POST /v1/connections` and `PUT /v1/connections/{name}`: a connection definition in
/// forcelink's field names. Parsed by [`crate::api::spec_from_json`]; this type carries its
/// schema, one variant per `method` from [`Method::fields`] (the list the CLI and the page read).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConnectionBody;

/// The settings every method shares (besides its own [`Method::fields`]).
const SHARED: [(&str, &str, &str); 6] = [
    ("login_url", URL_PATTERN, "Where users sign in; preset by `environment` (required with `custom`)."),
    ("token_url", URL_PATTERN, "The token endpoint's base URL when it differs from the login URL."),
    ("audience", URL_PATTERN, "JWT `aud`; defaults to the login URL."),
    ("instance_url", URL_PATTERN, "The org's URL; learnt from the token answer when not set."),
    ("api_version", API_VERSION_PATTERN, "e.g. 64.0"),
    (
        "pubsub_endpoint",
        PUBSUB_ENDPOINT_PATTERN,
        "Where the org's Pub/Sub API listens, host:port (default api.pubsub.salesforce.com:7443). Tokens are \
         sent there: changing it needs the connection's secrets again, as for the URLs.",
    ),
];

fn string(pattern: &str, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(pattern))
        .description(Some(description))
}

/// An optional setting: null, blank (both mean "not set", as for an unfilled form field) or a
/// value matching `pattern` (which is anchored with `^…$`).
fn optional(pattern: &str, description: &str) -> ObjectBuilder {
    let inner = pattern.trim_start_matches('^').trim_end_matches('$');
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(format!(r"^(?:\s*|{inner})$")))
        .description(Some(description))
}

fn field_schema(f: &FieldInfo, required: bool) -> ObjectBuilder {
    let pattern = match (f.secret, f.kind) {
        (true, _) => SECRET_PATTERN,
        (false, "url") => URL_PATTERN,
        _ => TEXT_PATTERN,
    };
    let text = if f.hint.is_empty() { f.label.to_owned() } else { format!("{}. {}", f.label, f.hint) };
    if required { string(pattern, &text) } else { optional(pattern, &text) }
}

/// One method's variant: `name`, `method` (that one), `environment`, the shared endpoint
/// settings and the method's own fields; nothing else.
fn variant(method: Method, in_path: bool) -> Schema {
    let mut o = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .title(Some(method.as_str()))
        .property(
            "method",
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).enum_values(Some([method.as_str()])),
        )
        .required("method")
        .property(
            "environment",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                // `custom` needs `login_url`; the document leaves it out so that every body it
                // describes is complete. Null means "not set", as for every setting.
                .enum_values(Some([Value::from("production"), Value::from("sandbox"), Value::Null]))
                .description(Some("Where the org signs users in (default production).")),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    // In a PUT the path names the connection (a `name` in the body must repeat it, which a
    // schema cannot say, so the document leaves it out).
    if !in_path {
        o = o.property("name", string(NAME_PATTERN, "The connection's name.")).required("name");
    }
    for (name, pattern, description) in SHARED {
        o = o.property(name, optional(pattern, description));
    }
    for f in method.fields() {
        // A PUT may leave a secret out (or blank): the stored value is kept.
        let required = f.required && !(in_path && f.secret);
        o = o.property(f.name, field_schema(f, required));
        if required {
            o = o.required(f.name);
        }
    }
    o.build().into()
}

fn connection_schema(in_path: bool) -> RefOr<Schema> {
    let mut one = OneOfBuilder::new().description(Some(
        "A connection definition: `method` picks the variant and its required fields. Secret fields take \
         values only (no env:/file: references) and are never shown again.",
    ));
    for m in Method::ALL {
        one = one.item(variant(m, in_path));
    }
    one.into()
}

impl PartialSchema for ConnectionBody {
    fn schema() -> RefOr<Schema> {
        connection_schema(false)
    }
}

impl ToSchema for ConnectionBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ConnectionBody")
    }
}

/// `PUT /v1/connections/{name}`: as [`ConnectionBody`], `name` optional (the path names it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConnectionEdit;

impl PartialSchema for ConnectionEdit {
    fn schema() -> RefOr<Schema> {
        connection_schema(true)
    }
}

impl ToSchema for ConnectionEdit {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ConnectionEdit")
    }
}

/// `GET /v1/openapi.json`: this document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct Document(pub Value);
