//! Validation and the edit rule: [`ConnectionSpec::resolve`] turns a spec into a
//! [`Connection`] (naming what is missing or wrong), [`ConnectionSpec::validate`] adds the host
//! rule, and [`ConnectionSpec::apply_edit`] keeps stored secrets only while the connection
//! keeps its endpoints.

use std::time::Duration;

use forcelink_auth::{ConnectionId, UrlPolicy};
use url::Url;

use super::method::{Environment, Method};
use super::resolved::{AuthConfig, Connection};
use super::secret::SecretRef;
use super::spec::{ConnectionSpec, FIELD_NAMES, SECRET_FIELDS};
use super::{
    ConfigError, DEFAULT_API_VERSION, DEFAULT_CALLBACK_URL, DEFAULT_PUBSUB_ENDPOINT, normalize_api_version,
    parse_pubsub_endpoint, validate_name,
};

impl ConnectionSpec {
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
    /// unchanged value (with or without a trailing slash, in another case, the Pub/Sub default
    /// spelt out) is no change.
    fn endpoint_settings(&self) -> [(&'static str, Option<String>); 6] {
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
            ("pubsub_endpoint", Some(self.pubsub_endpoint_text())),
        ]
    }

    /// The Pub/Sub endpoint as set (normalised when valid), else the default.
    fn pubsub_endpoint_text(&self) -> String {
        match self.pubsub_endpoint.as_deref() {
            Some(raw) => parse_pubsub_endpoint(raw).unwrap_or_else(|_| raw.to_owned()),
            None => DEFAULT_PUBSUB_ENDPOINT.to_owned(),
        }
    }

    /// Checks the URLs the spec names (login, token and instance URL, audience, a Pub/Sub
    /// endpoint it sets) against `policy`, whether or not the rest of the spec is complete: an
    /// edit is judged by where it points before anything else.
    pub fn check_urls(&self, name: &str, policy: &UrlPolicy) -> Result<(), ConfigError> {
        let [login, token, audience, instance, _, _] = self.endpoint_settings();
        // The scheme the Pub/Sub endpoint would be reached with (see `Connection::check_hosts`).
        let scheme = instance
            .1
            .as_deref()
            .or(login.1.as_deref())
            .and_then(|u| Url::parse(u).ok())
            .map_or_else(|| "https".to_owned(), |u| u.scheme().to_owned());
        let pubsub = self.pubsub_endpoint.as_ref().map(|_| format!("{scheme}://{}", self.pubsub_endpoint_text()));
        for (field, value) in [login, token, audience, instance, ("pubsub_endpoint", pubsub)] {
            if let Some(v) = value {
                policy.check_str(field, &v).map_err(|e| ConfigError::new(format!("connection {name}: {e}")))?;
            }
        }
        Ok(())
    }

    /// The secret fields that hold something.
    pub(crate) fn secret_fields_set(&self) -> Vec<&'static str> {
        let v = serde_json::to_value(self).unwrap_or_default();
        SECRET_FIELDS.into_iter().filter(|f| v.get(*f).is_some_and(|x| !x.is_null())).collect()
    }

    /// Applies an edit: `submitted` replaces `self`. Secret fields left out of `submitted` keep
    /// their stored values (they cannot be read back to be sent again) — unless the edit moves
    /// the connection to another endpoint (login, token or instance URL, audience, client id,
    /// Pub/Sub endpoint, since tokens are sent there):
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
            pubsub_endpoint: self
                .pubsub_endpoint
                .as_deref()
                .map(|raw| parse_pubsub_endpoint(raw).map_err(|e| at(e.0)))
                .transpose()?,
        })
    }
}
