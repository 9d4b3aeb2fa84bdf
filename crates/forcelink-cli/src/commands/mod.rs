//! The commands. Each returns an [`Outcome`] (JSON result, human text, warnings) or a
//! [`Failure`]; `main` prints either through `output`.

pub mod apikey;
pub mod bulk;
pub mod connection;
pub mod doctor;
pub mod events;
pub mod generate;
pub mod keygen;
pub mod login;
pub mod query;
pub mod serve;
pub mod sobject;
pub mod store;
pub mod token;
pub mod user;

use forcelink_store::AuditAction;
use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::time::SystemTime;

use forcelink_auth::{CacheConfig, ConnectionId, TokenCache, TokenSet};
use forcelink_store::connection::SECRET_FIELDS;
use forcelink_store::{AuditEntry, Connection, ConnectionSpec, ConnectionStore, Environment, Method};

use crate::failure::Failure;
use crate::settings::Settings;

/// What a successful command reports.
#[derive(Debug, Default)]
pub struct Outcome {
    pub result: serde_json::Value,
    pub human: String,
    pub warnings: Vec<String>,
    /// Exit code; non-zero for reports that found problems (`doctor`).
    pub exit: u8,
    /// The command wrote its output to stdout itself, as it went (record streams).
    pub streamed: bool,
}

impl Outcome {
    pub fn new(result: serde_json::Value, human: impl Into<String>) -> Self {
        Self { result, human: human.into(), warnings: Vec::new(), exit: 0, streamed: false }
    }
    /// For commands that printed their output while it arrived.
    pub fn streamed() -> Self {
        Self { streamed: true, ..Self::default() }
    }
    pub fn warn(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }
}

/// Connection settings as flags (shared by `connection add` and `login …`). Secret flags take
/// the value, `env:NAME`, `file:PATH`, or `-` to read it from standard input.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionFlags {
    /// production (login.salesforce.com), sandbox (test.salesforce.com) or custom (--login-url).
    #[arg(long, value_parser = ["production", "sandbox", "custom"])]
    pub environment: Option<String>,
    /// Where users sign in: your My Domain URL, e.g. https://acme.my.salesforce.com.
    #[arg(long, value_name = "URL")]
    pub login_url: Option<String>,
    /// Token endpoint host when it differs from the login URL (client credentials need My Domain).
    #[arg(long, value_name = "URL")]
    pub token_url: Option<String>,
    /// JWT audience (default: the login URL, then the token URL).
    #[arg(long, value_name = "URL")]
    pub audience: Option<String>,
    /// The org's instance URL (needed by access-token connections).
    #[arg(long, value_name = "URL")]
    pub instance_url: Option<String>,
    /// API version, e.g. 64.0.
    #[arg(long, value_name = "VERSION")]
    pub api_version: Option<String>,
    /// The org's session timeout in minutes: the token lifetime when it cannot be introspected.
    #[arg(long, value_name = "MINUTES")]
    pub session_timeout: Option<u64>,
    /// Connected app consumer key.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Connected app consumer secret (value, env:NAME, file:PATH or -).
    #[arg(long, value_name = "SECRET")]
    pub client_secret: Option<String>,
    #[arg(long)]
    pub username: Option<String>,
    /// Password (value, env:NAME, file:PATH or -).
    #[arg(long, value_name = "SECRET")]
    pub password: Option<String>,
    /// Security token appended to the password (value, env:NAME, file:PATH or -).
    #[arg(long, value_name = "SECRET")]
    pub security_token: Option<String>,
    /// JWT private key: file:PATH (from `forcelink keygen`), env:NAME, PEM text or -.
    #[arg(long, value_name = "KEY")]
    pub private_key: Option<String>,
    /// Access token (value, env:NAME, file:PATH or -).
    #[arg(long, value_name = "TOKEN")]
    pub access_token: Option<String>,
    /// Scopes, space-separated (e.g. "api refresh_token").
    #[arg(long)]
    pub scope: Option<String>,
    /// The web login's redirect URI as registered in the app (default
    /// http://localhost:1717/OauthRedirect; port 0 = any free port).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// Read settings from a JSON file (`-`: standard input): forcelink's field names, or the
    /// workflow-tool shape {"Username", "ClientId", "PrivateKey", "InstanceUrl", "InstanceAPIVersion"}.
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<String>,
}

impl ConnectionFlags {
    /// The spec these flags describe, plus warnings (secrets typed on the command line).
    pub fn to_spec(&self, method: Option<Method>) -> Result<(ConnectionSpec, Vec<String>), Failure> {
        let mut spec = match &self.from_json {
            Some(src) => spec_from_json(src)?,
            None => ConnectionSpec::default(),
        };
        let mut flags = ConnectionSpec::default();
        let mut warnings = Vec::new();
        let mut stdin_used = false;
        let mut secret = |field: &str, v: &Option<String>| -> Result<Option<String>, Failure> {
            match v.as_deref() {
                Some("-") => {
                    if stdin_used {
                        return Err(Failure::usage("only one setting can be read from standard input (-)"));
                    }
                    stdin_used = true;
                    Ok(Some(read_stdin(field)?))
                }
                Some(s) if !s.starts_with("env:") && !s.starts_with("file:") && SECRET_FIELDS.contains(&field) => {
                    warnings.push(format!(
                        "--{} was given as a value on the command line, where shell history and process lists can see it; prefer env:NAME, file:PATH or -",
                        field.replace('_', "-")
                    ));
                    Ok(Some(s.to_owned()))
                }
                other => Ok(other.map(str::to_owned)),
            }
        };
        flags.client_secret = secret("client_secret", &self.client_secret)?;
        flags.password = secret("password", &self.password)?;
        flags.security_token = secret("security_token", &self.security_token)?;
        flags.private_key = secret("private_key", &self.private_key)?;
        flags.access_token = secret("access_token", &self.access_token)?;
        if let Some(e) = &self.environment {
            flags.set_field("environment", e)?;
        }
        flags.method = method;
        flags.login_url = self.login_url.clone();
        flags.token_url = self.token_url.clone();
        flags.audience = self.audience.clone();
        flags.instance_url = self.instance_url.clone();
        flags.api_version = self.api_version.clone();
        flags.session_timeout_minutes = self.session_timeout;
        flags.client_id = self.client_id.clone();
        flags.username = self.username.clone();
        flags.scope = self.scope.clone();
        flags.callback_url = self.callback_url.clone();
        spec = spec.overlay(&flags);
        Ok((spec, warnings))
    }
}

fn spec_from_json(src: &str) -> Result<ConnectionSpec, Failure> {
    let text = if src == "-" {
        read_stdin("the JSON definition")?
    } else {
        std::fs::read_to_string(src).map_err(|e| Failure::config(format!("cannot read {src}: {e}")))?
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::config(format!("{src} is not valid JSON: {e}")).with_fix("fix the JSON; nothing was saved")
    })?;
    let workflow_shape = value.as_object().is_some_and(|o| {
        o.keys().any(|k| matches!(k.as_str(), "ClientId" | "InstanceUrl" | "PrivateKey" | "Username"))
    });
    if workflow_shape {
        Ok(ConnectionSpec::from_workflow_json(&value)?)
    } else {
        serde_json::from_value(value).map_err(|e| {
            Failure::config(format!("{src} is not a connection definition: {e}"))
                .with_fix("use forcelink's field names (see docs/cli.md) or the workflow shape {Username, ClientId, PrivateKey, InstanceUrl}")
        })
    }
}

fn read_stdin(what: &str) -> Result<String, Failure> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Failure::usage(format!("reading {what} from standard input: {e}")))?;
    let s = if s.contains("-----BEGIN") { s } else { s.trim_end_matches(['\r', '\n']).to_owned() };
    if s.is_empty() {
        return Err(Failure::usage(format!("standard input gave no value for {what}")));
    }
    Ok(s)
}

/// Settings a method cannot work without, in the order a prompt asks for them.
pub fn required_fields(method: Method) -> &'static [&'static str] {
    match method {
        Method::AccessToken => &["instance_url", "access_token"],
        Method::ClientCredentials => &["login_url", "client_id", "client_secret"],
        Method::Jwt => &["client_id", "username", "private_key"],
        Method::Web | Method::Device => &["client_id"],
        Method::Password => &["client_id", "username", "password"],
    }
}

/// On a terminal, asks for required settings the spec lacks (secrets without echo). Elsewhere
/// it asks nothing: validation then names what is missing.
pub fn prompt_missing(spec: &mut ConnectionSpec) -> Result<(), Failure> {
    let Some(method) = spec.method else { return Ok(()) };
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(());
    }
    for field in required_fields(method) {
        let current = serde_json::to_value(&*spec).ok().and_then(|v| v.get(*field).cloned());
        if current.is_some() {
            continue;
        }
        // A client-credentials login URL may come from the environment preset; only custom needs it.
        if *field == "login_url" && spec.environment != Some(Environment::Custom) && method != Method::ClientCredentials
        {
            continue;
        }
        let label = field.replace('_', " ");
        let value = if SECRET_FIELDS.contains(field) {
            rpassword::prompt_password(format!("{label} (value, env:NAME or file:PATH): "))
        } else {
            crate::output::prompt(&format!("{label}: "))
        }
        .map_err(|e| Failure::usage(format!("reading {label}: {e}")))?;
        if !value.trim().is_empty() {
            spec.set_field(field, value.trim_end_matches(['\r', '\n']))?;
        }
    }
    Ok(())
}

/// A connection ready to use: its settings merged from every source, and the store.
pub struct Opened {
    pub store: Arc<dyn ConnectionStore>,
    pub connection: Connection,
}

pub async fn open_connection(settings: &Settings, name: &ConnectionId) -> Result<Opened, Failure> {
    let store = settings.open_store().await?;
    let Some((spec, origins)) = settings.spec(&*store, name).await? else {
        return Err(settings.unknown(&*store, name).await);
    };
    let connection = spec.validate(name.as_str(), &settings.url_policy()).map_err(|e| {
        Failure::config(e.0).with_fix(format!(
            "complete it with `forcelink connection add {name} --replace …` or in {}",
            origins.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(" / ")
        ))
    })?;
    Ok(Opened { store, connection })
}

/// The token cache of a connection, over the shared store (one renewal across processes).
pub fn token_cache(settings: &Settings, opened: &Opened) -> Result<TokenCache, Failure> {
    let transport = settings.transport()?;
    let store: Arc<dyn forcelink_auth::TokenStore> = opened.store.clone();
    Ok(opened.connection.token_cache(&transport, &settings.env.resolver(), store, CacheConfig::default())?)
}

/// A REST client for a connection: tokens from its cache (one renewal across processes), the
/// connection's API version, and the settings' URL policy (plain http only to allowed hosts).
pub fn api_client(settings: &Settings, opened: &Opened) -> Result<forcelink_client::Client, Failure> {
    let cache = token_cache(settings, opened)?;
    let version = forcelink_client::ApiVersion::new(&opened.connection.api_version).map_err(|e| {
        Failure::config(format!("connection {}: {e}", opened.connection.name))
            .with_fix("set api_version to a version such as 64.0")
    })?;
    forcelink_client::Client::builder(Arc::new(cache))
        .url_policy(settings.url_policy())
        .api_version(version)
        .build()
        .map_err(Failure::from_client)
}

/// Who is acting, for the audit log: `cli:<user>@<host>`.
pub fn actor(settings: &Settings) -> String {
    let user = settings.env.get("USER").or_else(|| settings.env.get("LOGNAME")).unwrap_or("unknown");
    let host = settings
        .env
        .get("HOSTNAME")
        .map(str::to_owned)
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("cli:{user}@{host}")
}

pub async fn audit(
    settings: &Settings,
    store: &dyn ConnectionStore,
    connection: &ConnectionId,
    action: AuditAction,
    detail: Option<String>,
) {
    let entry = AuditEntry {
        #[allow(clippy::disallowed_methods)] // the binary reads the wall clock for the audit log
        at: SystemTime::now(),
        connection: connection.clone(),
        actor: actor(settings),
        action,
        detail,
    };
    // The audit log must not turn a successful command into a failed one; say so instead.
    if let Err(e) = store.append_audit(&entry).await {
        tracing::warn!("could not write the audit log: {e}");
    }
}

/// Times in JSON and for people: RFC 3339 in UTC, whole seconds (`2026-01-31T12:00:00Z`);
/// times before 1970 show as the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let seconds = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let ts = jiff::Timestamp::from_second(i64::try_from(seconds).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What is known about a stored token set, safe to print.
pub fn token_status(set: Option<&TokenSet>, now: SystemTime) -> serde_json::Value {
    match set {
        None => serde_json::json!({ "signed_in": false }),
        Some(s) => serde_json::json!({
            "signed_in": true,
            "instance_url": base_url(&s.instance_url),
            "user_id": s.user_id(),
            "org_id": s.org_id(),
            "issued_at": rfc3339(s.issued_at),
            "expires_at": s.expires_at.map(rfc3339),
            "expired": s.expires_at.is_some_and(|e| e <= now),
            "lifetime_source": format!("{:?}", s.lifetime_source).to_lowercase(),
            "has_refresh_token": s.refresh_token.is_some(),
            "scope": s.scope,
            "fingerprint": s.access_token.fingerprint(),
        }),
    }
}

/// Calls the REST API's resource list with the token: 200 means the token works for API calls.
pub async fn api_check(token: &forcelink_auth::Token, api_version: &str) -> Result<(), Failure> {
    let http = forcelink_auth::wire::default_http_client()?;
    let url = format!("{}/services/data/v{api_version}/", token.instance_url.as_str().trim_end_matches('/'));
    let resp = http
        .get(&url)
        .bearer_auth(token.access_token.secret())
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| {
            Failure::failed(format!("cannot reach {}: {e}", token.instance_url.origin().ascii_serialization()))
        })?;
    match resp.status().as_u16() {
        200 => Ok(()),
        401 => Err(Failure::sign_in("Salesforce refused the access token (HTTP 401: session expired or invalid)")),
        status => {
            let body = resp.text().await.unwrap_or_default();
            let excerpt: String = body.chars().take(200).collect();
            Err(Failure::failed(format!("the REST API answered HTTP {status}: {excerpt}"))
                .with_fix("check the api_version and the user's API Enabled permission"))
        }
    }
}

/// An instance URL without its trailing slash, ready for `…/services/…`.
pub fn base_url(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}
