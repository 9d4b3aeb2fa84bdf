//! The seed file: the org, its users and its connected apps, as TOML.
//!
//! `seed/default.toml` is both the built-in seed and the documented example. Parsing is strict
//! (unknown keys are errors) and validation names the offending entry, so a bad seed fails at
//! start-up with a message instead of misbehaving later.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::PlaygroundError;
pub use crate::schema::{CustomFieldSeed, CustomObjectSeed, DuplicateAction, DuplicateRuleSeed, ValidationRuleSeed};

/// The built-in seed, used when no `--seed` is given.
pub const DEFAULT_SEED_TOML: &str = include_str!("../seed/default.toml");

/// Session timeout used when neither the app nor the org sets one: 2 hours, Salesforce's usual.
pub const DEFAULT_SESSION_TIMEOUT_SECONDS: u64 = 7200;
/// Validity of asset tokens when the app sets none (Salesforce's Postman example shows 60 s).
pub const DEFAULT_ASSET_TOKEN_VALIDITY_SECONDS: u64 = 60;

/// A parsed seed file. Build one with [`Seed::from_toml`], [`Seed::from_file`] or
/// [`Seed::builtin`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The organization (`[org]`).
    pub org: OrgSeed,
    #[serde(default)]
    /// The users (`[[users]]`); the first is the default.
    pub users: Vec<UserSeed>,
    #[serde(default)]
    /// The connected apps (`[[connected_apps]]`); the first is the default.
    pub connected_apps: Vec<AppSeed>,
    /// Custom objects (`Invoice__c`), each with its `__c` fields.
    #[serde(default)]
    pub custom_objects: Vec<CustomObjectSeed>,
    /// Custom fields added to standard objects (`object = "Account"`).
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldSeed>,
    /// Platform events (`Name__e`) served on `/event/Name__e`; when none are declared, one
    /// default event, [`DEFAULT_PLATFORM_EVENT`], is.
    #[serde(default)]
    pub platform_events: Vec<PlatformEventSeed>,
    /// Validation rules (`[[validation_rules]]`): a SOQL condition that refuses a save.
    #[serde(default)]
    pub validation_rules: Vec<ValidationRuleSeed>,
    /// Duplicate rules (`[[duplicate_rules]]`): exact matches on chosen fields.
    #[serde(default)]
    pub duplicate_rules: Vec<DuplicateRuleSeed>,
    /// Records to generate at start-up, by object: `Account = 1000`.
    #[serde(default)]
    pub generate: std::collections::BTreeMap<String, u64>,
    /// Directory that relative certificate paths are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
/// The organization (`[org]`).
pub struct OrgSeed {
    /// Organization name.
    pub name: String,
    #[serde(default)]
    /// 18-character organization id (`00D…`); a fixed one is minted when left out.
    pub id: Option<String>,
    #[serde(default = "default_session_timeout")]
    /// Session timeout for apps that set none, in seconds.
    pub session_timeout_seconds: u64,
    /// The `DailyApiRequests` limit (Salesforce's Developer Edition has 15,000).
    #[serde(default = "default_daily_api_requests")]
    pub daily_api_requests: u64,
}

/// The platform event every playground offers when its seed declares none.
pub const DEFAULT_PLATFORM_EVENT: &str = "Forcelink_Notice__e";

/// A platform event declared in the seed (`[[platform_events]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformEventSeed {
    /// API name, ending in `__e`.
    pub name: String,
    #[serde(default)]
    /// The event's fields.
    pub fields: Vec<PlatformEventFieldSeed>,
}

/// A field of a platform event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformEventFieldSeed {
    /// API name, ending in `__c`.
    pub name: String,
    /// string (default), boolean, number, date, datetime.
    #[serde(default = "default_event_field_type", rename = "type")]
    pub field_type: String,
}

fn default_event_field_type() -> String {
    "string".into()
}

impl Seed {
    /// The declared platform events, or the default one.
    pub fn platform_events_or_default(&self) -> Vec<PlatformEventSeed> {
        if !self.platform_events.is_empty() {
            return self.platform_events.clone();
        }
        let field = |name: &str, t: &str| PlatformEventFieldSeed { name: name.into(), field_type: t.into() };
        vec![PlatformEventSeed {
            name: DEFAULT_PLATFORM_EVENT.into(),
            fields: vec![field("Message__c", "string"), field("Level__c", "number")],
        }]
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
/// A user (`[[users]]`). `Debug` redacts the password and security token.
pub struct UserSeed {
    /// Email-shaped, unique username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Security token (the password grant takes password + token).
    pub security_token: String,
    /// Profile name, matched against apps' `pre_approved_profiles`.
    pub profile: String,
    #[serde(default)]
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    #[serde(default = "yes")]
    /// `false` stops logins and invalidates tokens.
    pub active: bool,
    #[serde(default)]
    /// `true` stops logins and invalidates tokens.
    pub frozen: bool,
    #[serde(default = "default_time_zone")]
    /// Time zone (`TimeZoneSidKey`).
    pub time_zone: String,
    #[serde(default = "default_locale")]
    /// Locale (`LocaleSidKey`).
    pub locale: String,
}

impl std::fmt::Debug for UserSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSeed")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("security_token", &"[redacted]")
            .field("profile", &self.profile)
            .field("active", &self.active)
            .field("frozen", &self.frozen)
            .finish_non_exhaustive()
    }
}

/// An OAuth flow a connected app can enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// `client_credentials` grant.
    ClientCredentials,
    /// JWT bearer grant.
    JwtBearer,
    /// Authorization code (web server) flow.
    AuthorizationCode,
    /// `refresh_token` grant.
    RefreshToken,
    /// Username-password grant.
    Password,
    /// Device flow.
    Device,
    /// User-agent (implicit) flow.
    UserAgent,
    /// Token exchange.
    TokenExchange,
}

/// Who may use an app: Salesforce's "Permitted Users" policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermittedUsers {
    /// "All users may self-authorize".
    #[default]
    All,
    /// "Admin approved users are pre-authorized".
    AdminApproved,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
/// A connected app (`[[connected_apps]]`). `Debug` redacts the client secret.
pub struct AppSeed {
    /// App name.
    pub name: String,
    /// Consumer key.
    pub client_id: String,
    /// Consumer secret.
    pub client_secret: String,
    /// The OAuth flows the app allows.
    pub flows: Vec<Flow>,
    #[serde(default)]
    /// The user the client credentials grant runs as.
    pub run_as: Option<String>,
    #[serde(default)]
    /// Certificate for JWT bearer: a PEM path, inline PEM, or `generated`.
    pub certificate: Option<String>,
    #[serde(default)]
    /// Allowed callback URLs (`*` matches any run of characters).
    pub callback_urls: Vec<String>,
    #[serde(default = "default_scopes")]
    /// OAuth scopes the app may be granted.
    pub scopes: Vec<String>,
    #[serde(default)]
    /// Who may use the app.
    pub permitted_users: PermittedUsers,
    #[serde(default)]
    /// Profiles that need no consent page.
    pub pre_approved_profiles: Vec<String>,
    #[serde(default)]
    /// Require PKCE on the authorization code flow.
    pub require_pkce: bool,
    #[serde(default = "yes")]
    /// Require the client secret on the web server and refresh flows.
    pub require_secret: bool,
    #[serde(default)]
    /// Issue a new refresh token on each refresh.
    pub refresh_token_rotation: bool,
    #[serde(default)]
    /// Session timeout, in seconds; the org's when left out.
    pub session_timeout_seconds: Option<u64>,
    #[serde(default)]
    /// Introspect tokens of every app, not only its own.
    pub introspect_all: bool,
    #[serde(default)]
    /// Audiences allowed for asset tokens.
    pub asset_token_audiences: Vec<String>,
    #[serde(default)]
    /// Validity of asset tokens, in seconds.
    pub asset_token_validity_seconds: Option<u64>,
}

impl std::fmt::Debug for AppSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSeed")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("flows", &self.flows)
            .finish_non_exhaustive()
    }
}

fn yes() -> bool {
    true
}
fn default_session_timeout() -> u64 {
    DEFAULT_SESSION_TIMEOUT_SECONDS
}
fn default_daily_api_requests() -> u64 {
    15_000
}
fn default_time_zone() -> String {
    "America/Los_Angeles".to_owned()
}
fn default_locale() -> String {
    "en_US".to_owned()
}
fn default_scopes() -> Vec<String> {
    vec!["api".to_owned(), "refresh_token".to_owned()]
}

/// Where an app's JWT certificate comes from, once the seed is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertificateSource {
    /// The key pair the playground generates (the default app uses it).
    Generated,
    /// PEM text, read from the seed or from a file next to it.
    Pem(String),
}

impl Seed {
    /// The built-in seed.
    pub fn builtin() -> Self {
        // The built-in seed is covered by a unit test, so this cannot fail at run time.
        Self::from_toml(DEFAULT_SEED_TOML, Path::new(".")).expect("the built-in seed is valid")
    }

    /// Parses seed TOML; `base_dir` resolves relative certificate paths.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, PlaygroundError> {
        let mut seed: Seed = toml::from_str(text).map_err(|e| PlaygroundError::Seed { message: e.to_string() })?;
        seed.base_dir = base_dir.to_path_buf();
        seed.validate()?;
        Ok(seed)
    }

    /// Reads and parses a seed file.
    pub fn from_file(path: &Path) -> Result<Self, PlaygroundError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PlaygroundError::Seed { message: format!("cannot read seed file {}: {e}", path.display()) })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::from_toml(&text, &base).map_err(|e| match e {
            PlaygroundError::Seed { message } => {
                PlaygroundError::Seed { message: format!("{}: {message}", path.display()) }
            }
            other => other,
        })
    }

    fn validate(&self) -> Result<(), PlaygroundError> {
        let bad = |message: String| Err(PlaygroundError::Seed { message });
        if self.users.is_empty() {
            return bad("the seed defines no [[users]]; at least one is needed".into());
        }
        if self.connected_apps.is_empty() {
            return bad("the seed defines no [[connected_apps]]; at least one is needed".into());
        }
        if let Some(id) = &self.org.id
            && (id.len() != 18 || !id.starts_with("00D") || !id.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return bad(format!("org.id {id:?} is not an 18-character organization id (00D…)"));
        }
        for e in &self.platform_events {
            let ok = |n: &str, suffix: &str| {
                n.strip_suffix(suffix)
                    .is_some_and(|b| !b.is_empty() && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            };
            if !ok(&e.name, "__e") {
                return bad(format!(
                    "platform event {:?}: the name must be letters, digits and _ ending in __e",
                    e.name
                ));
            }
            for f in &e.fields {
                if !ok(&f.name, "__c") {
                    return bad(format!("platform event {}: field {:?} must end in __c", e.name, f.name));
                }
                if !["string", "boolean", "number", "date", "datetime"].contains(&f.field_type.as_str()) {
                    return bad(format!(
                        "platform event {}: field {} has type {:?}; use string, boolean, number, date or datetime",
                        e.name, f.name, f.field_type
                    ));
                }
            }
        }
        let mut names = HashSet::new();
        for u in &self.users {
            if !u.username.contains('@') {
                return bad(format!("user {:?}: username must be email-shaped", u.username));
            }
            if !names.insert(u.username.to_ascii_lowercase()) {
                return bad(format!("user {:?} is defined twice", u.username));
            }
        }
        let mut ids = HashSet::new();
        for a in &self.connected_apps {
            if a.client_id.is_empty() || a.client_secret.is_empty() {
                return bad(format!("connected app {:?}: client_id and client_secret are required", a.name));
            }
            if !ids.insert(a.client_id.as_str()) {
                return bad(format!("connected app client_id {:?} is defined twice", a.client_id));
            }
            if let Some(r) = &a.run_as
                && !names.contains(&r.to_ascii_lowercase())
            {
                return bad(format!("connected app {:?}: run_as user {r:?} is not among [[users]]", a.name));
            }
            let needs_callback = a.flows.contains(&Flow::AuthorizationCode) || a.flows.contains(&Flow::UserAgent);
            if needs_callback && a.callback_urls.is_empty() {
                return bad(format!(
                    "connected app {:?}: authorization_code/user_agent flows need callback_urls",
                    a.name
                ));
            }
            if a.flows.contains(&Flow::JwtBearer) && a.certificate.is_none() {
                return bad(format!(
                    "connected app {:?}: jwt_bearer needs a certificate (a PEM path, inline PEM, or \"generated\")",
                    a.name
                ));
            }
            if a.session_timeout_seconds == Some(0) {
                return bad(format!("connected app {:?}: session_timeout_seconds must be > 0", a.name));
            }
        }
        if let Err(message) = self.schema() {
            return bad(message);
        }
        Ok(())
    }

    /// The org's schema: standard objects, the seed's custom objects and fields, and its rules.
    pub(crate) fn schema(&self) -> Result<crate::schema::Schema, String> {
        crate::schema::Schema::build(&self.custom_objects, &self.custom_fields)?
            .with_rules(&self.validation_rules, &self.duplicate_rules)
    }

    /// Resolves an app's `certificate` setting.
    pub(crate) fn certificate_source(&self, app: &AppSeed) -> Result<Option<CertificateSource>, PlaygroundError> {
        let Some(value) = &app.certificate else { return Ok(None) };
        if value == "generated" {
            return Ok(Some(CertificateSource::Generated));
        }
        if value.contains("-----BEGIN CERTIFICATE-----") {
            return Ok(Some(CertificateSource::Pem(value.clone())));
        }
        let path = self.base_dir.join(value);
        let pem = std::fs::read_to_string(&path).map_err(|e| PlaygroundError::Seed {
            message: format!("connected app {:?}: cannot read certificate {}: {e}", app.name, path.display()),
        })?;
        Ok(Some(CertificateSource::Pem(pem)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_events_parse_default_and_bad_ones_are_named() {
        assert_eq!(Seed::builtin().platform_events_or_default()[0].name, DEFAULT_PLATFORM_EVENT);
        let base = DEFAULT_SEED_TOML;
        let good = format!(
            "{base}\n[[platform_events]]\nname = \"Order_Shipped__e\"\nfields = [{{ name = \"No__c\" }}, {{ name = \"Kg__c\", type = \"number\" }}]\n"
        );
        let seed = Seed::from_toml(&good, Path::new(".")).unwrap();
        let events = seed.platform_events_or_default();
        assert_eq!(events.len(), 1, "declared events replace the default");
        assert_eq!(events[0].fields[1].field_type, "number");
        let bad = format!("{base}\n[[platform_events]]\nname = \"Order_Shipped\"\n");
        let err = Seed::from_toml(&bad, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("Order_Shipped") && err.contains("__e"), "{err}");
        let bad = format!(
            "{base}\n[[platform_events]]\nname = \"A__e\"\nfields = [{{ name = \"B__c\", type = \"blob\" }}]\n"
        );
        assert!(Seed::from_toml(&bad, Path::new(".")).unwrap_err().to_string().contains("blob"));
    }

    #[test]
    fn builtin_seed_parses_and_default_app_enables_every_flow() {
        let seed = Seed::builtin();
        let app = &seed.connected_apps[0];
        for flow in [
            Flow::ClientCredentials,
            Flow::JwtBearer,
            Flow::AuthorizationCode,
            Flow::RefreshToken,
            Flow::Password,
            Flow::Device,
            Flow::UserAgent,
            Flow::TokenExchange,
        ] {
            assert!(app.flows.contains(&flow), "{flow:?} missing");
        }
        assert_eq!(app.run_as.as_deref(), Some(seed.users[0].username.as_str()));
        assert_eq!(seed.users[0].profile, "System Administrator");
        assert!(app.pre_approved_profiles.contains(&seed.users[0].profile));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let text = DEFAULT_SEED_TOML.replace("require_pkce = false", "require_pcke = false");
        let err = Seed::from_toml(&text, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("require_pcke"), "{err}");
    }

    #[test]
    fn run_as_must_name_a_user() {
        let text = DEFAULT_SEED_TOML
            .replace("run_as = \"admin@playground.forcelink.dev\"", "run_as = \"ghost@playground.forcelink.dev\"");
        let err = Seed::from_toml(&text, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("ghost@playground.forcelink.dev"), "{err}");
    }

    #[test]
    fn debug_output_redacts_credentials() {
        let seed = Seed::builtin();
        let shown = format!("{seed:?}");
        assert!(!shown.contains(&seed.users[0].password));
        assert!(!shown.contains(&seed.users[0].security_token));
        assert!(!shown.contains(&seed.connected_apps[0].client_secret));
    }
}
