//! Connections: a named org and how to sign in to it.
//!
//! A [`ConnectionSpec`] is the flat shape every source speaks — the TOML config file, the
//! `FORCELINK_CONNECTIONS__NAME__FIELD` environment variables, CLI flags, the broker's HTTP API,
//! the store — with every field optional so sources can be layered ([`ConnectionSpec::overlay`]).
//! [`ConnectionSpec::resolve`] validates it into a [`Connection`], whose [`AuthConfig`] holds
//! exactly what its auth method needs. Secrets are [`SecretRef`]s: a value (stored encrypted),
//! `env:NAME` or `file:PATH`, resolved only when a token is fetched.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use forcelink_auth::endpoint::{PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL};
use forcelink_auth::flows::client_credentials::ClientCredentials;
use forcelink_auth::flows::jwt_bearer::JwtBearer;
use forcelink_auth::flows::password::UsernamePassword;
use forcelink_auth::flows::refresh::RefreshTokenSource;
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::identity::{AnyToken, IdentityClient};
use forcelink_auth::secret::{AccessToken, ClientSecret, Password, PrivateKeyPem};
use forcelink_auth::{
    AppCredentials, AuthError, AuthMethod, CacheConfig, ConnectionId, Endpoints, OAuthErrorKind, TokenCache, TokenSet,
    TokenSource, TokenStore, Transport, UrlPolicy,
};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use url::Url;

/// The API version a connection uses unless it names one (defined once, in forcelink-auth).
pub use forcelink_auth::DEFAULT_API_VERSION;

/// Longest connection name.
pub const MAX_NAME_LEN: usize = 64;

/// Where the org signs users in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    /// `https://login.salesforce.com`
    Production,
    /// `https://test.salesforce.com`
    Sandbox,
    /// A My Domain or other custom login URL (`login_url` is required).
    Custom,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
            Environment::Custom => "custom",
        }
    }
    fn preset(self) -> Option<&'static str> {
        match self {
            Environment::Production => Some(PRODUCTION_LOGIN_URL),
            Environment::Sandbox => Some(SANDBOX_LOGIN_URL),
            Environment::Custom => None,
        }
    }
}

/// How a connection signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// An instance URL and an access token obtained elsewhere.
    AccessToken,
    ClientCredentials,
    Jwt,
    /// Web server flow (authorization code + PKCE) at login; refresh token afterwards.
    Web,
    /// Device flow at login; refresh token afterwards.
    Device,
    /// Username-password (legacy: Salesforce is retiring it).
    Password,
}

impl Method {
    pub const ALL: [Method; 6] =
        [Method::AccessToken, Method::ClientCredentials, Method::Jwt, Method::Web, Method::Device, Method::Password];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::AccessToken => "access-token",
            Method::ClientCredentials => "client-credentials",
            Method::Jwt => "jwt",
            Method::Web => "web",
            Method::Device => "device",
            Method::Password => "password",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s.trim())
    }

    /// Methods whose tokens come from an interactive login and are renewed by refresh token.
    pub fn is_interactive(self) -> bool {
        matches!(self, Method::Web | Method::Device)
    }

    /// What a person calls it.
    pub fn label(self) -> &'static str {
        match self {
            Method::AccessToken => "Access token",
            Method::ClientCredentials => "Client credentials",
            Method::Jwt => "JWT bearer",
            Method::Web => "Web server flow (Authorize in the browser)",
            Method::Device => "Device flow",
            Method::Password => "Username and password",
        }
    }

    /// The method's own settings (besides the endpoints every method shares), in form order:
    /// the one list the CLI, the page and the API read.
    pub fn fields(self) -> &'static [FieldInfo] {
        const WEB: [FieldInfo; 3] = [
            CLIENT_ID,
            info("client_secret", "Consumer secret", "password", false, "Needed unless the app is a public client."),
            info("scope", "Scopes", "text", false, "Default: api refresh_token."),
        ];
        const CLIENT_CREDENTIALS: [FieldInfo; 3] = [
            CLIENT_ID,
            info("client_secret", "Consumer secret", "password", true, ""),
            info("scope", "Scopes", "text", false, ""),
        ];
        const JWT: [FieldInfo; 3] = [
            CLIENT_ID,
            info("username", "Username", "text", true, "The user the app acts as."),
            info("private_key", "Private key (PEM)", "textarea", true, "The key whose certificate is in the app."),
        ];
        const PASSWORD: [FieldInfo; 5] = [
            CLIENT_ID,
            info("client_secret", "Consumer secret", "password", false, ""),
            info("username", "Username", "text", true, ""),
            info("password", "Password", "password", true, ""),
            info("security_token", "Security token", "password", false, ""),
        ];
        const ACCESS_TOKEN: [FieldInfo; 2] = [
            info("instance_url", "Instance URL", "url", true, "e.g. https://acme.my.salesforce.com"),
            info("access_token", "Access token", "password", true, "Used until Salesforce refuses it."),
        ];
        match self {
            Method::Web | Method::Device => &WEB,
            Method::ClientCredentials => &CLIENT_CREDENTIALS,
            Method::Jwt => &JWT,
            Method::Password => &PASSWORD,
            Method::AccessToken => &ACCESS_TOKEN,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret, or where to find it. The text form is `env:NAME`, `file:PATH`, or the value itself.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Value(String),
    Env(String),
    File(PathBuf),
}

impl SecretRef {
    pub fn parse(text: &str) -> SecretRef {
        if let Some(name) = text.strip_prefix("env:") {
            SecretRef::Env(name.trim().to_owned())
        } else if let Some(path) = text.strip_prefix("file:") {
            SecretRef::File(PathBuf::from(path.trim()))
        } else {
            SecretRef::Value(text.to_owned())
        }
    }

    /// The text form; a value is returned as is (callers store it sealed, never print it).
    pub fn to_text(&self) -> String {
        match self {
            SecretRef::Value(v) => v.clone(),
            SecretRef::Env(n) => format!("env:{n}"),
            SecretRef::File(p) => format!("file:{}", p.display()),
        }
    }

    /// What may be shown: the reference, or `[stored]` for a value.
    pub fn display(&self) -> String {
        match self {
            SecretRef::Value(_) => "[stored]".to_owned(),
            other => other.to_text(),
        }
    }

    pub fn is_value(&self) -> bool {
        matches!(self, SecretRef::Value(_))
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// Reads `env:` and `file:` secrets. Libraries take no ambient environment: the binary passes
/// its environment in.
/// Looks up one environment variable.
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

#[derive(Clone)]
pub struct SecretResolver {
    env: Arc<EnvLookup>,
}

impl fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretResolver")
    }
}

impl SecretResolver {
    pub fn new(env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self { env: Arc::new(env) }
    }

    /// Resolves only values; `env:` references fail (for tests and sandboxes).
    pub fn without_env() -> Self {
        Self::new(|_| None)
    }

    /// `what` names the setting in errors, e.g. "client_secret of connection prod".
    pub fn resolve(&self, what: &str, secret: &SecretRef) -> Result<String, ConfigError> {
        match secret {
            SecretRef::Value(v) => Ok(v.clone()),
            SecretRef::Env(name) => (self.env)(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                ConfigError::new(format!("{what} refers to environment variable {name}, which is not set or empty"))
            }),
            SecretRef::File(path) => {
                let expanded = expand_home(path, &*self.env);
                let text = std::fs::read_to_string(&expanded).map_err(|e| {
                    ConfigError::new(format!("{what} refers to file {}, which cannot be read: {e}", expanded.display()))
                })?;
                // Files written by editors end with a newline; secrets never do (PEM keeps its own).
                Ok(if text.contains("-----BEGIN") { text } else { text.trim_end_matches(['\r', '\n']).to_owned() })
            }
        }
    }
}

fn expand_home(path: &std::path::Path, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match (path.strip_prefix("~"), env("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// A configuration mistake, said so the user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A connection as sources describe it: every field optional, secrets in text form.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Where users sign in (authorize endpoint); preset by `environment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    /// Base URL of the token endpoint when it differs from the login URL (e.g. My Domain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// JWT `aud`; defaults to the login URL, then the token URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Needed by `access-token`; otherwise learnt from the token response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The org's session timeout, used as token lifetime when introspection is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_timeout_minutes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Security token appended to the password (username-password flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
    /// PEM text, or `file:PATH` (the usual form) or `env:NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The web login's loopback redirect URI, as registered in the connected app; defaults to
    /// [`DEFAULT_CALLBACK_URL`]. Port 0 takes any free port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// Fields that hold secrets (values are sealed in the store and never printed).
pub const SECRET_FIELDS: [&str; 5] = ["client_secret", "password", "security_token", "private_key", "access_token"];

/// Every field of a [`ConnectionSpec`], in its serialized names.
pub const FIELD_NAMES: [&str; 17] = [
    "environment",
    "method",
    "login_url",
    "token_url",
    "audience",
    "instance_url",
    "api_version",
    "session_timeout_minutes",
    "client_id",
    "client_secret",
    "username",
    "password",
    "security_token",
    "private_key",
    "access_token",
    "scope",
    "callback_url",
];

/// What a form or a help text needs to know about one setting of an auth method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The setting's name in every source (`client_id`…).
    pub name: &'static str,
    pub label: &'static str,
    /// Held sealed, written only, never shown.
    pub secret: bool,
    pub required: bool,
    /// `text`, `password`, `textarea` or `url`: how a form asks for it.
    pub kind: &'static str,
    pub hint: &'static str,
}

const fn info(
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    required: bool,
    hint: &'static str,
) -> FieldInfo {
    let secret = matches!(kind.as_bytes(), b"password" | b"textarea");
    FieldInfo { name, label, secret, required, kind, hint }
}

const CLIENT_ID: FieldInfo = info("client_id", "Consumer key (client id)", "text", true, "From the connected app.");

impl fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(&self.redacted()).unwrap_or_default())
    }
}

impl ConnectionSpec {
    /// The fields set in `over` replace those of `self` (later sources win).
    pub fn overlay(mut self, over: &ConnectionSpec) -> ConnectionSpec {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f.clone(); } )* };
        }
        take!(
            environment,
            method,
            login_url,
            token_url,
            audience,
            instance_url,
            api_version,
            session_timeout_minutes,
            client_id,
            client_secret,
            username,
            password,
            security_token,
            private_key,
            access_token,
            scope,
            callback_url
        );
        self
    }

    /// As JSON with secret values replaced by `[stored]` (references are shown).
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            for field in SECRET_FIELDS {
                if let Some(serde_json::Value::String(s)) = obj.get_mut(field) {
                    *s = SecretRef::parse(s).display();
                }
            }
        }
        v
    }

    /// Sets one field from its text form (`FORCELINK_CONNECTIONS__N__FIELD`, `--set field=value`).
    pub fn set_field(&mut self, field: &str, value: &str) -> Result<(), ConfigError> {
        let v = Some(value.to_owned());
        match field {
            "environment" => self.environment = Some(parse_environment(value)?),
            "method" => {
                self.method = Some(Method::parse(value).ok_or_else(|| {
                    ConfigError::new(format!(
                        "unknown method {value:?}; expected one of {}",
                        Method::ALL.map(Method::as_str).join(", ")
                    ))
                })?)
            }
            "login_url" => self.login_url = v,
            "token_url" => self.token_url = v,
            "audience" => self.audience = v,
            "instance_url" => self.instance_url = v,
            "api_version" => self.api_version = v,
            "session_timeout_minutes" => {
                self.session_timeout_minutes = Some(value.trim().parse().map_err(|_| {
                    ConfigError::new(format!("session_timeout_minutes must be a whole number, not {value:?}"))
                })?)
            }
            "client_id" => self.client_id = v,
            "client_secret" => self.client_secret = v,
            "username" => self.username = v,
            "password" => self.password = v,
            "security_token" => self.security_token = v,
            "private_key" => self.private_key = v,
            "access_token" => self.access_token = v,
            "scope" => self.scope = v,
            "callback_url" => self.callback_url = v,
            other => return Err(ConfigError::new(format!("unknown connection setting {other:?}"))),
        }
        Ok(())
    }

    /// Connections defined by `FORCELINK_CONNECTIONS__<NAME>__<FIELD>` variables (name and field
    /// are lowercased; e.g. `FORCELINK_CONNECTIONS__PROD__CLIENT_ID`).
    pub fn from_env_vars<I, K, V>(vars: I) -> Result<BTreeMap<String, ConnectionSpec>, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut out: BTreeMap<String, ConnectionSpec> = BTreeMap::new();
        for (k, v) in vars {
            let Some(rest) = k.as_ref().strip_prefix("FORCELINK_CONNECTIONS__") else { continue };
            let Some((name, field)) = rest.split_once("__") else {
                return Err(ConfigError::new(format!(
                    "environment variable {} should look like FORCELINK_CONNECTIONS__NAME__FIELD",
                    k.as_ref()
                )));
            };
            let name = name.to_ascii_lowercase().replace('_', "-");
            validate_name(&name)?;
            out.entry(name)
                .or_default()
                .set_field(&field.to_ascii_lowercase(), v.as_ref())
                .map_err(|e| ConfigError::new(format!("{}: {e}", k.as_ref())))?;
        }
        Ok(out)
    }

    /// The settings shape common in workflow tools:
    /// `{ "Username", "ClientId", "PrivateKey", "InstanceUrl", "InstanceAPIVersion" }` (a JWT
    /// bearer connection whose login and token host is `InstanceUrl`).
    pub fn from_workflow_json(json: &serde_json::Value) -> Result<ConnectionSpec, ConfigError> {
        let obj = json.as_object().ok_or_else(|| ConfigError::new("the workflow settings must be a JSON object"))?;
        let get = |key: &str| -> Option<String> {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .and_then(|(_, v)| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let need = |key: &str| {
            get(key).ok_or_else(|| ConfigError::new(format!("the workflow settings lack {key:?} (a non-empty string)")))
        };
        let instance = need("InstanceUrl")?;
        let login = instance.trim_end_matches('/').to_owned();
        let environment = match login.as_str() {
            PRODUCTION_LOGIN_URL => Environment::Production,
            SANDBOX_LOGIN_URL => Environment::Sandbox,
            _ => Environment::Custom,
        };
        let private_key = need("PrivateKey")?;
        // Settings UIs often flatten the PEM's newlines into `\n` escapes.
        let private_key = if private_key.contains("\\n") { private_key.replace("\\n", "\n") } else { private_key };
        Ok(ConnectionSpec {
            environment: Some(environment),
            method: Some(Method::Jwt),
            login_url: Some(login),
            username: Some(need("Username")?),
            client_id: Some(need("ClientId")?),
            private_key: Some(private_key),
            api_version: get("InstanceAPIVersion").map(|v| normalize_api_version(&v)),
            ..ConnectionSpec::default()
        })
    }

    /// Validates the spec into a [`Connection`] named `name` and checks every URL it would send
    /// a secret or token to against `policy` (the host rule). What saves a connection — the
    /// API, the page, the CLI, a config file — calls this, so a foreign host is refused when
    /// saved, not only when used.
    pub fn validate(&self, name: &str, policy: &UrlPolicy) -> Result<Connection, ConfigError> {
        let connection = self.resolve(name)?;
        connection.check_hosts(policy)?;
        Ok(connection)
    }

    /// The settings that decide where secrets and tokens go, normalised so that repeating an
    /// unchanged value (with or without a trailing slash, in another case) is no change.
    fn endpoint_settings(&self) -> [(&'static str, Option<String>); 5] {
        let norm = |v: &Option<String>| {
            v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(|s| match Url::parse(s) {
                Ok(u) => u.as_str().trim_end_matches('/').to_owned(),
                Err(_) => s.to_owned(),
            })
        };
        let environment = match (self.environment, &self.login_url) {
            (Some(e), _) => Some(e),
            (None, Some(_)) => Some(Environment::Custom),
            (None, None) => Some(Environment::Production),
        };
        let login = self.login_url.clone().or_else(|| environment.and_then(Environment::preset).map(str::to_owned));
        [
            ("login_url", norm(&login)),
            ("token_url", norm(&self.token_url)),
            ("audience", norm(&self.audience)),
            ("instance_url", norm(&self.instance_url)),
            ("client_id", self.client_id.as_deref().map(str::trim).map(str::to_owned)),
        ]
    }

    /// Checks the URLs the spec names (login, token and instance URL, audience) against `policy`,
    /// whether or not the rest of the spec is complete: an edit is judged by where it points
    /// before anything else.
    pub fn check_urls(&self, name: &str, policy: &UrlPolicy) -> Result<(), ConfigError> {
        let [login, token, audience, instance, _] = self.endpoint_settings();
        for (field, value) in [login, token, audience, instance] {
            if let Some(v) = value {
                policy.check_str(field, &v).map_err(|e| ConfigError::new(format!("connection {name}: {e}")))?;
            }
        }
        Ok(())
    }

    /// The secret fields that hold something.
    pub fn secret_fields_set(&self) -> Vec<&'static str> {
        let v = serde_json::to_value(self).unwrap_or_default();
        SECRET_FIELDS.into_iter().filter(|f| v.get(*f).is_some_and(|x| !x.is_null())).collect()
    }

    /// Applies an edit: `submitted` replaces `self`. Secret fields left out of `submitted` keep
    /// their stored values (they cannot be read back to be sent again) — unless the edit moves
    /// the connection to another endpoint (login, token or instance URL, audience, client id):
    /// then every stored secret must be given again in the same request, so a caller who can
    /// edit settings but does not know the secrets cannot send them to a host of its choosing
    /// (re-sending the same value counts). Returns the new spec and the names of the fields
    /// that changed (never their values).
    pub fn apply_edit(
        &self,
        mut submitted: ConnectionSpec,
    ) -> Result<(ConnectionSpec, Vec<&'static str>), ConfigError> {
        let before = self.endpoint_settings();
        let after = submitted.endpoint_settings();
        let moved: Vec<&str> = before.iter().zip(after.iter()).filter(|(b, a)| b.1 != a.1).map(|(b, _)| b.0).collect();
        let missing: Vec<&str> =
            self.secret_fields_set().into_iter().filter(|f| !submitted.secret_fields_set().contains(f)).collect();
        if !moved.is_empty() && !missing.is_empty() {
            return Err(ConfigError::new(format!(
                "changing {} needs every secret of the connection again in the same request ({} missing): \
                 stored secrets are never sent to a new endpoint",
                moved.join(", "),
                missing.join(", ")
            )));
        }
        macro_rules! keep {
            ($($f:ident),*) => { $( if submitted.$f.is_none() { submitted.$f = self.$f.clone(); } )* };
        }
        keep!(client_secret, password, security_token, private_key, access_token);
        let changed = self.changed_fields(&submitted);
        Ok((submitted, changed))
    }

    /// The names of the fields whose values differ between `self` and `other`.
    pub fn changed_fields(&self, other: &ConnectionSpec) -> Vec<&'static str> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(other).unwrap_or_default();
        FIELD_NAMES.into_iter().filter(|f| a.get(*f) != b.get(*f)).collect()
    }

    /// Validates the spec into a [`Connection`] named `name`.
    pub fn resolve(&self, name: &str) -> Result<Connection, ConfigError> {
        validate_name(name)?;
        let at = |msg: String| ConfigError::new(format!("connection {name}: {msg}"));
        let method = self.method.ok_or_else(|| {
            at(format!("no auth method; set method to one of {}", Method::ALL.map(Method::as_str).join(", ")))
        })?;
        let environment = match (self.environment, &self.login_url) {
            (Some(e), _) => e,
            (None, Some(_)) => Environment::Custom,
            (None, None) => Environment::Production,
        };
        let login_raw = match (&self.login_url, environment.preset()) {
            (Some(u), _) => u.clone(),
            (None, Some(p)) => p.to_owned(),
            (None, None) => {
                return Err(at(
                    "environment custom needs login_url (your My Domain, e.g. https://acme.my.salesforce.com)".into(),
                ));
            }
        };
        let url = |what: &str, raw: &str| -> Result<Url, ConfigError> {
            let u = Url::parse(raw.trim())
                .map_err(|e| at(format!("{what} {raw:?} is not a URL ({e}); e.g. https://acme.my.salesforce.com")))?;
            if !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
                return Err(at(format!("{what} must be an https URL, not {raw:?}")));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(at(format!("{what} must not carry user info (user:password@)")));
            }
            Ok(u)
        };
        let login_url = url("login_url", &login_raw)?;
        let token_url = self.token_url.as_deref().map(|u| url("token_url", u)).transpose()?;
        let instance_url = self.instance_url.as_deref().map(|u| url("instance_url", u)).transpose()?;
        // The instance URL is where every API call and token goes: an origin, nothing more, so
        // no path or query can smuggle a different target or leak into logs.
        if let Some(u) = &instance_url
            && (u.path() != "/" || u.query().is_some() || u.fragment().is_some())
        {
            return Err(at(format!(
                "instance_url must be an origin (scheme://host[:port]) without path, query or fragment, e.g. {}",
                u.origin().ascii_serialization()
            )));
        }
        let api_version = normalize_api_version(self.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION));
        if !api_version.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }) {
            return Err(at(format!("api_version {api_version:?} is not like 64.0")));
        }
        let secret = |field: &str, v: &Option<String>| -> Result<SecretRef, ConfigError> {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(SecretRef::parse)
                .ok_or_else(|| at(format!("method {method} needs {field}")))
        };
        let opt_secret = |v: &Option<String>| v.as_deref().filter(|s| !s.trim().is_empty()).map(SecretRef::parse);
        let text = |field: &str, v: &Option<String>| -> Result<String, ConfigError> {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| at(format!("method {method} needs {field}")))
        };
        let auth = match method {
            Method::AccessToken => {
                if instance_url.is_none() {
                    return Err(at("method access-token needs instance_url (the org's My Domain URL)".into()));
                }
                AuthConfig::AccessToken { access_token: secret("access_token", &self.access_token)? }
            }
            Method::ClientCredentials => AuthConfig::ClientCredentials {
                client_id: text("client_id", &self.client_id)?,
                client_secret: secret("client_secret", &self.client_secret)?,
                scope: self.scope.clone(),
            },
            Method::Jwt => AuthConfig::Jwt {
                client_id: text("client_id", &self.client_id)?,
                username: text("username", &self.username)?,
                private_key: secret("private_key (file:PATH of the key `forcelink keygen` made)", &self.private_key)?,
                client_secret: opt_secret(&self.client_secret),
            },
            Method::Web => AuthConfig::Web {
                client_id: text("client_id", &self.client_id)?,
                client_secret: opt_secret(&self.client_secret),
                scope: self.scope.clone(),
                callback_url: {
                    let raw = self.callback_url.as_deref().unwrap_or(DEFAULT_CALLBACK_URL);
                    let u = url("callback_url", raw)?;
                    let host = u.host_str().unwrap_or("");
                    // The listener binds 127.0.0.1, which `localhost` reaches too.
                    if u.scheme() != "http" || !matches!(host, "localhost" | "127.0.0.1") {
                        return Err(at(format!(
                            "callback_url {raw:?} must be an http loopback URL (http://localhost:PORT/PATH): the CLI listens for the redirect on this machine"
                        )));
                    }
                    u
                },
            },
            Method::Device => AuthConfig::Device {
                client_id: text("client_id", &self.client_id)?,
                client_secret: opt_secret(&self.client_secret),
                scope: self.scope.clone(),
            },
            Method::Password => AuthConfig::Password {
                client_id: text("client_id", &self.client_id)?,
                client_secret: opt_secret(&self.client_secret),
                username: text("username", &self.username)?,
                password: secret("password", &self.password)?,
                security_token: opt_secret(&self.security_token),
            },
        };
        Ok(Connection {
            name: ConnectionId::new(name),
            environment,
            login_url,
            token_url,
            audience: self.audience.clone().filter(|a| !a.trim().is_empty()),
            instance_url,
            api_version,
            session_timeout: self.session_timeout_minutes.map(|m| Duration::from_secs(m * 60)),
            auth,
        })
    }
}

/// The web login's redirect URI unless the connection names one: the connected app must list
/// it as a callback URL. It is also what the sf CLI registers, so apps made for it work as is.
pub const DEFAULT_CALLBACK_URL: &str = "http://localhost:1717/OauthRedirect";

fn parse_environment(value: &str) -> Result<Environment, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "production" | "prod" => Ok(Environment::Production),
        "sandbox" | "test" => Ok(Environment::Sandbox),
        "custom" | "mydomain" | "my-domain" => Ok(Environment::Custom),
        other => Err(ConfigError::new(format!(
            "unknown environment {other:?}; expected production, sandbox or custom (with login_url)"
        ))),
    }
}

/// `v59.0`, `59` and `59.0` all mean `59.0`.
pub fn normalize_api_version(v: &str) -> String {
    let v = v.trim().trim_start_matches(['v', 'V']);
    if v.contains('.') { v.to_owned() } else { format!("{v}.0") }
}

/// Names are what users type: letters, digits, `-`, `_`, `.`, starting with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "connection name {name:?} is not valid: use up to {MAX_NAME_LEN} letters, digits, '-', '_' or '.', starting with a letter or digit"
        )))
    }
}

/// What an auth method needs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthConfig {
    AccessToken {
        access_token: SecretRef,
    },
    ClientCredentials {
        client_id: String,
        client_secret: SecretRef,
        scope: Option<String>,
    },
    Jwt {
        client_id: String,
        username: String,
        private_key: SecretRef,
        /// Not needed to sign in; when given, tokens are introspected to learn their expiry.
        client_secret: Option<SecretRef>,
    },
    Web {
        client_id: String,
        client_secret: Option<SecretRef>,
        scope: Option<String>,
        callback_url: Url,
    },
    Device {
        client_id: String,
        client_secret: Option<SecretRef>,
        scope: Option<String>,
    },
    Password {
        client_id: String,
        client_secret: Option<SecretRef>,
        username: String,
        password: SecretRef,
        security_token: Option<SecretRef>,
    },
}

impl AuthConfig {
    pub fn method(&self) -> Method {
        match self {
            AuthConfig::AccessToken { .. } => Method::AccessToken,
            AuthConfig::ClientCredentials { .. } => Method::ClientCredentials,
            AuthConfig::Jwt { .. } => Method::Jwt,
            AuthConfig::Web { .. } => Method::Web,
            AuthConfig::Device { .. } => Method::Device,
            AuthConfig::Password { .. } => Method::Password,
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            AuthConfig::AccessToken { .. } => None,
            AuthConfig::ClientCredentials { client_id, .. }
            | AuthConfig::Jwt { client_id, .. }
            | AuthConfig::Web { client_id, .. }
            | AuthConfig::Device { client_id, .. }
            | AuthConfig::Password { client_id, .. } => Some(client_id),
        }
    }

    pub fn client_secret(&self) -> Option<&SecretRef> {
        match self {
            AuthConfig::ClientCredentials { client_secret, .. } => Some(client_secret),
            AuthConfig::Web { client_secret, .. }
            | AuthConfig::Device { client_secret, .. }
            | AuthConfig::Jwt { client_secret, .. }
            | AuthConfig::Password { client_secret, .. } => client_secret.as_ref(),
            AuthConfig::AccessToken { .. } => None,
        }
    }

    pub fn scope(&self) -> Option<&str> {
        match self {
            AuthConfig::ClientCredentials { scope, .. }
            | AuthConfig::Web { scope, .. }
            | AuthConfig::Device { scope, .. } => scope.as_deref(),
            _ => None,
        }
    }
}

/// A validated connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub name: ConnectionId,
    pub environment: Environment,
    pub login_url: Url,
    pub token_url: Option<Url>,
    pub audience: Option<String>,
    pub instance_url: Option<Url>,
    pub api_version: String,
    pub session_timeout: Option<Duration>,
    pub auth: AuthConfig,
}

impl Connection {
    pub fn method(&self) -> Method {
        self.auth.method()
    }

    /// Checks every URL this connection sends secrets or tokens to — login, token and instance
    /// URL, and the JWT audience — against `policy` (https Salesforce hosts, or origins the
    /// operator allows).
    pub fn check_hosts(&self, policy: &UrlPolicy) -> Result<(), ConfigError> {
        let at = |e: AuthError| ConfigError::new(format!("connection {}: {e}", self.name));
        policy.check("login_url", &self.login_url).map_err(at)?;
        if let Some(u) = &self.token_url {
            policy.check("token_url", u).map_err(at)?;
        }
        if let Some(u) = &self.instance_url {
            policy.check("instance_url", u).map_err(at)?;
        }
        if let Some(a) = &self.audience {
            policy.check_str("audience", a).map_err(at)?;
        }
        Ok(())
    }

    /// The authorize, revoke, introspect and userinfo endpoints (on the login URL).
    pub fn login_endpoints(&self) -> Endpoints {
        Endpoints::salesforce(&self.login_url)
    }

    /// The endpoints with the token endpoint on `token_url` when it is set.
    pub fn endpoints(&self) -> Endpoints {
        let mut e = self.login_endpoints();
        if let Some(t) = &self.token_url {
            let on_token_host = Endpoints::salesforce(t);
            e.token = on_token_host.token;
            e.revoke = on_token_host.revoke;
            e.introspect = on_token_host.introspect;
            e.userinfo = on_token_host.userinfo;
        }
        e
    }

    /// JWT audiences in the order to try: the configured one, else the login URL then the token
    /// URL (the auth crate moves on when Salesforce says the audience is wrong).
    pub fn audiences(&self) -> Vec<String> {
        if let Some(a) = &self.audience {
            return vec![a.clone()];
        }
        let origin = |u: &Url| u.origin().ascii_serialization();
        let mut out = vec![origin(&self.login_url)];
        if let Some(t) = &self.token_url
            && origin(t) != out[0]
        {
            out.push(origin(t));
        }
        out
    }

    /// The app's credentials (client id and, when configured, the secret).
    pub fn app_credentials(&self, secrets: &SecretResolver) -> Result<Option<AppCredentials>, ConfigError> {
        let Some(id) = self.auth.client_id() else { return Ok(None) };
        let secret = self
            .auth
            .client_secret()
            .map(|s| secrets.resolve(&self.what("client_secret"), s).map(ClientSecret::new))
            .transpose()?;
        Ok(Some(AppCredentials::new(id, secret)))
    }

    fn what(&self, field: &str) -> String {
        format!("{field} of connection {}", self.name)
    }

    /// The source that gets this connection's tokens without a person: the method's own flow,
    /// or the refresh token for connections signed in interactively (`web`, `device`).
    pub fn token_source(
        &self,
        transport: &Transport,
        secrets: &SecretResolver,
    ) -> Result<Arc<dyn TokenSource>, SourceError> {
        let endpoints = self.endpoints();
        let app = self.app_credentials(secrets)?;
        let t = transport.clone();
        Ok(match &self.auth {
            AuthConfig::AccessToken { access_token } => {
                let token = AccessToken::new(secrets.resolve(&self.what("access_token"), access_token)?);
                // resolve() guarantees instance_url for this method.
                let instance = self.instance_url.as_ref().map(Url::as_str).unwrap_or_default();
                Arc::new(StaticToken::new(transport.policy(), instance, token)?)
            }
            AuthConfig::ClientCredentials { scope, .. } => {
                let mut s = ClientCredentials::new(t, endpoints, app.unwrap_or_else(|| AppCredentials::new("", None)))?;
                if let Some(sc) = scope {
                    s = s.with_scope(sc.clone());
                }
                Arc::new(s)
            }
            AuthConfig::Jwt { client_id, username, private_key, .. } => {
                let pem = PrivateKeyPem::new(secrets.resolve(&self.what("private_key"), private_key)?);
                Arc::new(JwtBearer::new(t, endpoints, client_id.clone(), username.clone(), &pem, self.audiences())?)
            }
            AuthConfig::Web { .. } | AuthConfig::Device { .. } => {
                Arc::new(RefreshTokenSource::new(t, endpoints, app.unwrap_or_else(|| AppCredentials::new("", None)))?)
            }
            AuthConfig::Password { username, password, security_token, .. } => {
                let pw = Password::new(secrets.resolve(&self.what("password"), password)?);
                let st = security_token
                    .as_ref()
                    .map(|s| secrets.resolve(&self.what("security_token"), s))
                    .transpose()?
                    .map(forcelink_auth::secret::SecurityToken::new);
                Arc::new(UsernamePassword::new(
                    t,
                    endpoints,
                    app.unwrap_or_else(|| AppCredentials::new("", None)),
                    username.clone(),
                    pw,
                    st,
                )?)
            }
        })
    }
}

impl Connection {
    /// The one way a connection becomes a [`TokenCache`] (the CLI and the broker both use it):
    /// its token source over `store` (one renewal per connection across processes), the
    /// connection's session timeout over `config`, and introspection to learn expiries when the
    /// app's secret is known. A secret reference that cannot be resolved now (an unset
    /// variable, a missing file) fails only when a new token is needed, so a stored valid
    /// token is still used.
    pub fn token_cache(
        &self,
        transport: &Transport,
        secrets: &SecretResolver,
        store: Arc<dyn TokenStore>,
        config: CacheConfig,
    ) -> Result<TokenCache, SourceError> {
        let source: Arc<dyn TokenSource> = match self.token_source(transport, secrets) {
            Ok(s) => s,
            Err(SourceError::Config(e)) => Arc::new(Unresolved { method: self.method(), message: e.0 }),
            Err(e) => return Err(e),
        };
        let config = CacheConfig { session_timeout: self.session_timeout.or(config.session_timeout), ..config };
        let cache = TokenCache::new(self.name.clone(), source, store, transport.clock().clone(), config);
        // Introspection tells the real expiry; Salesforce requires the app's secret for it.
        Ok(match self.app_credentials(secrets) {
            Ok(Some(app)) if app.client_secret.is_some() => {
                cache.with_introspection(IdentityClient::new(transport.clone(), self.endpoints(), app)?)
            }
            _ => cache,
        })
    }
}

impl Connection {
    /// Revokes `set` — its refresh token when it has one (which ends every access token of that
    /// grant), else its access token — at the server that issued it and nowhere else: a set
    /// records its issuer, so settings edited since cannot redirect the token. Sets stored before
    /// issuers were recorded go to this connection's endpoints. `Ok(true)` when revoked or
    /// already unknown to the server; `Ok(false)` for a pasted access token (it belongs to
    /// another session and is only forgotten).
    pub async fn revoke(
        &self,
        transport: &Transport,
        secrets: &SecretResolver,
        set: &TokenSet,
    ) -> Result<bool, AuthError> {
        if self.method() == Method::AccessToken {
            return Ok(false);
        }
        let endpoints = match &set.issuer {
            Some(issuer) => Endpoints::salesforce(issuer),
            None => self.endpoints(),
        };
        let app = self.app_credentials(secrets).unwrap_or_default().unwrap_or_else(|| AppCredentials::new("", None));
        let identity = IdentityClient::new(transport.clone(), endpoints, app)?;
        let token = match &set.refresh_token {
            Some(r) => AnyToken::Refresh(r),
            None => AnyToken::Access(&set.access_token),
        };
        match identity.revoke(token).await {
            Ok(()) => Ok(true),
            // Salesforce answers `invalid_token` for a token it no longer knows (already revoked).
            Err(AuthError::OAuth { error, .. })
                if error.error == "invalid_token" || error.kind() == OAuthErrorKind::ExpiredToken =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

/// The token source of a connection whose secret reference cannot be resolved: it fails, with
/// what to set, only when asked for a token.
#[derive(Debug)]
struct Unresolved {
    method: Method,
    message: String,
}

impl TokenSource for Unresolved {
    fn fetch<'a>(&'a self, _current: Option<&'a TokenSet>) -> BoxFuture<'a, Result<TokenSet, AuthError>> {
        Box::pin(async move { Err(AuthError::Config(self.message.clone())) })
    }
    fn method(&self) -> AuthMethod {
        match self.method {
            Method::AccessToken => AuthMethod::StaticToken,
            Method::ClientCredentials => AuthMethod::ClientCredentials,
            Method::Jwt => AuthMethod::JwtBearer,
            // Signed in interactively; renewed with the refresh token.
            Method::Web | Method::Device => AuthMethod::RefreshToken,
            Method::Password => AuthMethod::UsernamePassword,
        }
    }
}

/// Why a token source could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairs: &[(&str, &str)]) -> ConnectionSpec {
        let mut s = ConnectionSpec::default();
        for (k, v) in pairs {
            s.set_field(k, v).unwrap();
        }
        s
    }

    #[test]
    fn presets_and_custom_login_urls() {
        let c = spec(&[("method", "client-credentials"), ("client_id", "id"), ("client_secret", "env:S")])
            .resolve("prod")
            .unwrap();
        assert_eq!(c.login_url.as_str(), "https://login.salesforce.com/");
        let c = spec(&[
            ("environment", "sandbox"),
            ("method", "jwt"),
            ("client_id", "i"),
            ("username", "u"),
            ("private_key", "file:k.pem"),
        ])
        .resolve("sb")
        .unwrap();
        assert_eq!(c.login_url.as_str(), "https://test.salesforce.com/");
        assert_eq!(c.audiences(), vec!["https://test.salesforce.com".to_owned()]);
        let err =
            spec(&[("environment", "custom"), ("method", "device"), ("client_id", "i")]).resolve("x").unwrap_err();
        assert!(err.0.contains("needs login_url"), "{err}");
    }

    #[test]
    fn each_method_names_what_it_misses() {
        let err = spec(&[("method", "jwt"), ("client_id", "i")]).resolve("p").unwrap_err();
        assert!(err.0.contains("connection p: method jwt needs username"), "{err}");
        let err = spec(&[("method", "access-token"), ("access_token", "t")]).resolve("p").unwrap_err();
        assert!(err.0.contains("instance_url"), "{err}");
        let err = ConnectionSpec::default().resolve("p").unwrap_err();
        assert!(err.0.contains("no auth method"), "{err}");
        assert!(validate_name("bad name").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("prod.eu_1-a").is_ok());
    }

    #[test]
    fn token_endpoint_and_audience_are_separate_settings() {
        let c = spec(&[
            ("method", "jwt"),
            ("client_id", "i"),
            ("username", "u"),
            ("private_key", "k"),
            ("token_url", "https://acme.my.salesforce.com"),
        ])
        .resolve("p")
        .unwrap();
        assert_eq!(c.endpoints().token.as_str(), "https://acme.my.salesforce.com/services/oauth2/token");
        assert_eq!(c.endpoints().authorize.as_str(), "https://login.salesforce.com/services/oauth2/authorize");
        assert_eq!(c.audiences(), vec!["https://login.salesforce.com", "https://acme.my.salesforce.com"]);
    }

    #[test]
    fn env_vars_layer_over_file_fields() {
        let env = ConnectionSpec::from_env_vars([
            ("FORCELINK_CONNECTIONS__PROD_EU__CLIENT_SECRET", "env:OTHER"),
            ("HOME", "/x"),
        ])
        .unwrap();
        let file = spec(&[("method", "client-credentials"), ("client_id", "id"), ("client_secret", "plain")]);
        let merged = file.overlay(&env["prod-eu"]);
        assert_eq!(merged.client_secret.as_deref(), Some("env:OTHER"));
        assert_eq!(merged.client_id.as_deref(), Some("id"));
        assert!(ConnectionSpec::from_env_vars([("FORCELINK_CONNECTIONS__P__NOPE", "1")]).is_err());
    }

    #[test]
    fn workflow_json_becomes_a_jwt_connection() {
        let json = serde_json::json!({
            "Username": "integration@acme.com", "ClientId": "3MVG9", "PrivateKey": "-----BEGIN PRIVATE KEY-----\\nMII\\n-----END PRIVATE KEY-----",
            "InstanceUrl": "https://acme.my.salesforce.com/", "InstanceAPIVersion": "v59.0"
        });
        let s = ConnectionSpec::from_workflow_json(&json).unwrap();
        let c = s.resolve("wf").unwrap();
        assert_eq!(c.method(), Method::Jwt);
        assert_eq!(c.api_version, "59.0");
        assert_eq!(c.environment, Environment::Custom);
        assert!(s.private_key.unwrap().contains("KEY-----\nMII\n"));
        let err = ConnectionSpec::from_workflow_json(&serde_json::json!({"Username": "u"})).unwrap_err();
        assert!(err.0.contains("InstanceUrl"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug_or_redacted_json() {
        let s = spec(&[
            ("method", "password"),
            ("client_id", "i"),
            ("username", "u"),
            ("password", "hunter2"),
            ("client_secret", "env:CS"),
        ]);
        let shown = format!("{s:?} {}", s.redacted());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("env:CS"));
        let c = s.resolve("p").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn secret_refs_resolve_from_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.txt");
        std::fs::write(&f, "from-file\n").unwrap();
        let r = SecretResolver::new(|k| (k == "S").then(|| "from-env".to_owned()));
        assert_eq!(r.resolve("x", &SecretRef::parse("env:S")).unwrap(), "from-env");
        assert_eq!(r.resolve("x", &SecretRef::parse(&format!("file:{}", f.display()))).unwrap(), "from-file");
        let err = r.resolve("client_secret of connection p", &SecretRef::parse("env:MISSING")).unwrap_err();
        assert!(err.0.contains("MISSING") && err.0.contains("client_secret of connection p"), "{err}");
    }

    fn cc(login: &str) -> ConnectionSpec {
        spec(&[
            ("method", "client-credentials"),
            ("client_id", "id"),
            ("client_secret", "s3cret"),
            ("login_url", login),
        ])
    }

    #[test]
    fn a_foreign_host_is_refused_when_saved_naming_the_rule() {
        let policy = UrlPolicy::new();
        assert!(cc("https://acme.my.salesforce.com").validate("p", &policy).is_ok());
        for (field, value) in [
            ("login_url", "https://evil.example"),
            ("token_url", "https://evil.example"),
            ("audience", "https://evil.example"),
            ("instance_url", "https://evil.example"),
            ("login_url", "http://acme.my.salesforce.com"),
            ("token_url", "http://127.0.0.1:8411"),
        ] {
            let mut s = cc("https://acme.my.salesforce.com");
            s.set_field(field, value).unwrap();
            let err = s.validate("p", &policy).unwrap_err();
            assert!(err.0.contains(field) && err.0.contains("--allow-origin"), "{field}: {err}");
        }
        let playground = UrlPolicy::new().allow_origin("http://127.0.0.1:8411").unwrap();
        assert!(cc("http://127.0.0.1:8411").validate("p", &playground).is_ok());
        assert!(cc("http://127.0.0.1:8412").validate("p", &playground).is_err());
    }

    #[test]
    fn instance_url_is_an_origin() {
        let base = [("method", "access-token"), ("access_token", "t")];
        let ok = spec(&[base[0], base[1], ("instance_url", "https://acme.my.salesforce.com/")]);
        assert!(ok.resolve("p").is_ok());
        for bad in [
            "https://acme.my.salesforce.com/services",
            "https://acme.my.salesforce.com/?x=1",
            "https://acme.my.salesforce.com/#f",
            "https://u:p@acme.my.salesforce.com",
        ] {
            let err = spec(&[base[0], base[1], ("instance_url", bad)]).resolve("p").unwrap_err();
            assert!(err.0.contains("instance_url"), "{bad}: {err}");
            assert!(!err.0.contains(":p@"), "{err}");
        }
    }

    #[test]
    fn moving_an_endpoint_needs_every_secret_again() {
        let old = spec(&[
            ("method", "password"),
            ("client_id", "id"),
            ("client_secret", "cs"),
            ("username", "u"),
            ("password", "pw"),
            ("login_url", "https://acme.my.salesforce.com"),
        ]);
        // Same endpoint written differently, secrets left out: kept, no endpoint change.
        let mut same = old.clone();
        same.client_secret = None;
        same.password = None;
        same.login_url = Some("https://ACME.my.salesforce.com/".into());
        same.username = Some("other".into());
        let (merged, changed) = old.apply_edit(same).unwrap();
        assert_eq!(merged.password.as_deref(), Some("pw"));
        assert_eq!(merged.client_secret.as_deref(), Some("cs"));
        assert!(changed.contains(&"username") && changed.contains(&"login_url"), "{changed:?}");
        assert!(!changed.contains(&"password"));
        for (field, value) in [
            ("login_url", "https://evil.my.salesforce.com"),
            ("token_url", "https://acme.my.salesforce.com"),
            ("audience", "https://login.salesforce.com"),
            ("instance_url", "https://acme.my.salesforce.com"),
            ("client_id", "other-app"),
            ("environment", "sandbox"),
        ] {
            let mut moved = old.clone();
            moved.client_secret = None;
            moved.set_field(field, value).unwrap();
            if field == "environment" {
                moved.login_url = None;
            }
            let err = old.apply_edit(moved.clone()).unwrap_err();
            assert!(
                err.0.contains("client_secret") && !err.0.contains("pw") && !err.0.contains("cs "),
                "{field}: {err}"
            );
            // Re-sending every secret (the same values count) is accepted.
            moved.client_secret = Some("cs".into());
            let (merged, changed) = old.apply_edit(moved).unwrap();
            assert_eq!(merged.password.as_deref(), Some("pw"));
            assert!(changed.contains(&field), "{field}: {changed:?}");
        }
    }

    #[test]
    fn method_fields_mark_exactly_the_secret_settings() {
        for m in Method::ALL {
            assert!(!m.label().is_empty());
            for f in m.fields() {
                assert_eq!(f.secret, SECRET_FIELDS.contains(&f.name), "{m}: {}", f.name);
                assert!(FIELD_NAMES.contains(&f.name), "{}", f.name);
                let mut s = ConnectionSpec::default();
                s.set_field(f.name, "x").unwrap();
            }
        }
        // Every required setting of a method is in its field list.
        let jwt: Vec<_> = Method::Jwt.fields().iter().filter(|f| f.required).map(|f| f.name).collect();
        assert_eq!(jwt, ["client_id", "username", "private_key"]);
    }
}
