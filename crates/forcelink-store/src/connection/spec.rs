//! [`ConnectionSpec`]: the flat shape every source speaks, every field optional, secrets in
//! text form; layering ([`ConnectionSpec::overlay`]), one field from its text, the
//! `FORCELINK_CONNECTIONS__…` variables and the workflow tools' JSON settings.

use std::collections::BTreeMap;
use std::fmt;

use forcelink_auth::endpoint::{PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL};
use serde::{Deserialize, Serialize};

use super::method::{Environment, Method, parse_environment};
use super::secret::SecretRef;
use super::{ConfigError, normalize_api_version, validate_name};

/// A connection as sources describe it: every field optional, secrets in text form.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Where the org signs users in; `custom` with a `login_url`, `production` when neither is set.
    pub environment: Option<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// How the connection signs in.
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
    /// The REST API version (`64.0`, `v64.0`, `64`); [`DEFAULT_API_VERSION`](super::DEFAULT_API_VERSION) when unset.
    pub api_version: Option<String>,
    /// The org's session timeout, used as token lifetime when introspection is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_timeout_minutes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The connected app's consumer key.
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The connected app's consumer secret (secret).
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The user (JWT bearer, username-password).
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The user's password (secret).
    pub password: Option<String>,
    /// Security token appended to the password (username-password flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
    /// PEM text, or `file:PATH` (the usual form) or `env:NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// An access token obtained elsewhere (secret; `access-token` method).
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Scopes to ask for (space separated).
    pub scope: Option<String>,
    /// The web login's loopback redirect URI, as registered in the connected app; defaults to
    /// [`DEFAULT_CALLBACK_URL`](super::DEFAULT_CALLBACK_URL). Port 0 takes any free port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Where the org's Pub/Sub API listens, `host:port`; defaults to
    /// [`DEFAULT_PUBSUB_ENDPOINT`](super::DEFAULT_PUBSUB_ENDPOINT). Tokens are sent there, so
    /// it is an endpoint for the host rule and the edit rule, like the instance URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pubsub_endpoint: Option<String>,
}

/// Fields that hold secrets (values are sealed in the store and never printed).
pub const SECRET_FIELDS: [&str; 5] = ["client_secret", "password", "security_token", "private_key", "access_token"];

/// Every field of a [`ConnectionSpec`], in its serialized names.
pub(crate) const FIELD_NAMES: [&str; 18] = [
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
    "pubsub_endpoint",
];

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
            callback_url,
            pubsub_endpoint
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
            "pubsub_endpoint" => self.pubsub_endpoint = v,
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
}
