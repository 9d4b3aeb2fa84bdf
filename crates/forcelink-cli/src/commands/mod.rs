//! The commands, one module per command group. Each returns an
//! [`Outcome`](crate::outcome::Outcome) (JSON result, human text, warnings) or a [`Failure`];
//! `main` prints either through `output`.

pub mod apikey;
pub mod bulk;
pub mod connection;
pub mod doctor;
pub mod document;
pub mod events;
pub mod flags;
pub mod generate;
pub mod keygen;
pub mod limits;
pub mod login;
pub mod playground;
pub mod query;
pub mod search;
pub mod serve;
pub mod sobject;
pub mod store;
pub mod subscription;
pub mod token;
pub mod user;

use forcelink_store::AuditAction;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::SystemTime;

use forcelink_auth::{AuthError, CacheConfig, ConnectionId, TokenCache, TokenProvider, TokenSet};
use forcelink_client::ClientError;
use forcelink_store::connection::SECRET_FIELDS;
use forcelink_store::{AuditEntry, Connection, ConnectionSpec, ConnectionStore, Environment, Method};

use crate::failure::{Failure, Kind};
use crate::settings::Settings;

/// The connection a data command works on.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArg {
    /// Connection name (default: FORCELINK_CONNECTION or the config file's default_connection).
    #[arg(short = 'c', long = "connection", value_name = "NAME")]
    pub connection: Option<String>,
}

impl ConnectionArg {
    /// The named connection (or the default one), opened.
    pub async fn open(&self, settings: &Settings) -> Result<Opened, Failure> {
        let name = settings.connection_name(self.connection.as_deref())?;
        open_connection(settings, &name).await
    }

    /// A REST client for the named connection (or the default one).
    pub async fn client(&self, settings: &Settings) -> Result<forcelink_client::Client, Failure> {
        api_client(settings, &self.open(settings).await?)
    }
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
    client_over(settings, &opened.connection, Arc::new(token_cache(settings, opened)?))
}

/// A REST client for `connection` with tokens from `tokens` (its cache, or a token being
/// checked before it is kept).
pub fn client_over(
    settings: &Settings,
    connection: &Connection,
    tokens: Arc<dyn TokenProvider>,
) -> Result<forcelink_client::Client, Failure> {
    let version = forcelink_client::ApiVersion::new(&connection.api_version).map_err(|e| {
        Failure::config(format!("connection {}: {e}", connection.name))
            .with_fix("set api_version to a version such as 64.0")
    })?;
    forcelink_client::Client::builder(tokens)
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

/// A time as JSON results and people see it: RFC 3339 in UTC, whole seconds
/// (`2026-01-31T12:00:00Z`); times before 1970 show as the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let seconds = jiff::Timestamp::try_from(t).map(|ts| ts.as_second()).unwrap_or(0).max(0);
    jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH).to_string()
}

/// The one parser of duration flags (`--health-interval`): a number and a unit, as people
/// write them (`30s`, `5m`, `1h`, `1h30m`, `90 seconds`), or ISO 8601 (`PT5M`), through jiff's
/// duration parser. Negative durations are refused; a bare number is refused too, because
/// whether `300` means seconds or minutes is a guess.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let hint = "write a number and a unit, e.g. 30s, 5m or 1h";
    let parsed: jiff::SignedDuration =
        text.trim().parse().map_err(|_| format!("{text:?} is not a duration; {hint}"))?;
    std::time::Duration::try_from(parsed).map_err(|_| format!("{text:?} is negative; {hint}"))
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

/// What a sign-in failure says when the REST API refuses the token.
const TOKEN_REFUSED: &str = "Salesforce refused the access token (HTTP 401: session expired or invalid)";

/// Asks the REST API for its resource list through forcelink-client: an answer means the token
/// works for API calls. A failure reads like every other API error (status, Salesforce's code,
/// a shortened body with session ids redacted). A token refused even after the client's one
/// renewal is a sign-in failure; a renewal that fails says why, as a token request would.
pub async fn api_check(client: &forcelink_client::Client) -> Result<(), Failure> {
    let Err(e) = client.resources().send().await else { return Ok(()) };
    Err(match e {
        ClientError::Auth(AuthError::StaticTokenRejected) => Failure::sign_in(TOKEN_REFUSED),
        ClientError::Auth(a) => Failure::from_auth(a),
        e if e.status() == Some(401) => Failure::sign_in(TOKEN_REFUSED),
        e => {
            let answered = e.status().is_some();
            let failure = Failure { kind: Kind::Failed, ..Failure::from_client(e) };
            if answered {
                failure.with_fix("check the api_version and the user's API Enabled permission")
            } else {
                failure
            }
        }
    })
}

/// An instance URL without its trailing slash, ready for `…/services/…`.
pub fn base_url(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{parse_duration, rfc3339};

    #[test]
    fn times_show_as_rfc3339_in_utc_with_whole_seconds() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap_day = SystemTime::UNIX_EPOCH + Duration::from_millis(1_709_210_096_750);
        assert_eq!(rfc3339(leap_day), "2024-02-29T12:34:56Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn durations_take_a_unit_and_refuse_bare_numbers_and_negatives() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90 seconds"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("PT2M"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["300", "five minutes", "", "-5m", "5 parsecs"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("e.g. 30s"), "{bad:?}: {e}");
        }
    }
}
