//! Connection settings as command-line flags, in groups: `connection add` takes every group
//! ([`ConnectionFlags`]); each `login` method takes only the groups its flow uses, so its
//! `--help` lists only its own options. Secret flags take the value, `env:NAME`, `file:PATH`,
//! or `-` to read it from standard input.

use std::io::Read;

use forcelink_store::connection::SECRET_FIELDS;
use forcelink_store::{ConnectionSpec, Method};

use crate::failure::Failure;

/// Settings every method takes: where the org signs in and answers, and a JSON file of settings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonFlags {
    /// production (login.salesforce.com), sandbox (test.salesforce.com) or custom (--login-url).
    #[arg(long, value_parser = ["production", "sandbox", "custom"])]
    pub environment: Option<String>,
    /// Where users sign in: your My Domain URL, e.g. https://acme.my.salesforce.com.
    #[arg(long, value_name = "URL")]
    pub login_url: Option<String>,
    /// Token endpoint host when it differs from the login URL (client credentials need My Domain).
    #[arg(long, value_name = "URL")]
    pub token_url: Option<String>,
    /// API version, e.g. 64.0.
    #[arg(long, value_name = "VERSION")]
    pub api_version: Option<String>,
    /// The org's session timeout in minutes: the token lifetime when it cannot be introspected.
    #[arg(long, value_name = "MINUTES")]
    pub session_timeout: Option<u64>,
    /// Where the org's Pub/Sub API listens (default api.pubsub.salesforce.com:7443).
    #[arg(long, value_name = "HOST:PORT")]
    pub pubsub_endpoint: Option<String>,
    /// Read settings from a JSON file (`-`: standard input): forcelink's field names, or the
    /// workflow-tool shape {"Username", "ClientId", "PrivateKey", "InstanceUrl", "InstanceAPIVersion"}.
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<String>,
}

/// The connected app: every method but access-token.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AppFlags {
    /// Connected app consumer key.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Connected app consumer secret (value, env:NAME, file:PATH or -).
    #[arg(long, value_name = "SECRET")]
    pub client_secret: Option<String>,
}

/// Scopes asked for: web, device and client credentials.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ScopeFlag {
    /// Scopes, space-separated (e.g. "api refresh_token").
    #[arg(long)]
    pub scope: Option<String>,
}

/// The Salesforce user: JWT bearer, username-password, and the web login's hint.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UserFlag {
    /// The Salesforce username (the JWT's subject, who signs in with a password, or the web
    /// login's hint).
    #[arg(long)]
    pub username: Option<String>,
}

/// The JWT bearer flow's key and audience.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JwtFlags {
    /// JWT private key: file:PATH (from `forcelink keygen`), env:NAME, PEM text or -.
    #[arg(long, value_name = "KEY")]
    pub private_key: Option<String>,
    /// JWT audience (default: the login URL, then the token URL).
    #[arg(long, value_name = "URL")]
    pub audience: Option<String>,
}

/// The username-password flow's secrets.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PasswordFlags {
    /// Password (value, env:NAME, file:PATH or -).
    #[arg(long, value_name = "SECRET")]
    pub password: Option<String>,
    /// Security token appended to the password (value, env:NAME, file:PATH or -).
    #[arg(long, value_name = "SECRET")]
    pub security_token: Option<String>,
}

/// A token obtained elsewhere and the org it belongs to.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccessTokenFlags {
    /// The org's instance URL (needed by access-token connections).
    #[arg(long, value_name = "URL")]
    pub instance_url: Option<String>,
    /// Access token (value, env:NAME, file:PATH or -).
    #[arg(long, value_name = "TOKEN")]
    pub access_token: Option<String>,
}

/// The web login's redirect.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CallbackFlag {
    /// The web login's redirect URI as registered in the app (default
    /// http://localhost:1717/OauthRedirect; port 0 = any free port).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
}

/// Every connection setting as flags (`connection add`, where the method is itself a flag).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionFlags {
    #[command(flatten)]
    pub common: CommonFlags,
    #[command(flatten)]
    pub app: AppFlags,
    #[command(flatten)]
    pub user: UserFlag,
    #[command(flatten)]
    pub password: PasswordFlags,
    #[command(flatten)]
    pub jwt: JwtFlags,
    #[command(flatten)]
    pub access: AccessTokenFlags,
    #[command(flatten)]
    pub scope: ScopeFlag,
    #[command(flatten)]
    pub callback: CallbackFlag,
}

impl ConnectionFlags {
    /// The spec these flags describe, plus warnings (secrets typed on the command line).
    pub fn to_spec(&self, method: Option<Method>) -> Result<(ConnectionSpec, Vec<String>), Failure> {
        let mut spec = match &self.common.from_json {
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
        flags.client_secret = secret("client_secret", &self.app.client_secret)?;
        flags.password = secret("password", &self.password.password)?;
        flags.security_token = secret("security_token", &self.password.security_token)?;
        flags.private_key = secret("private_key", &self.jwt.private_key)?;
        flags.access_token = secret("access_token", &self.access.access_token)?;
        if let Some(e) = &self.common.environment {
            flags.set_field("environment", e)?;
        }
        flags.method = method;
        flags.login_url = self.common.login_url.clone();
        flags.token_url = self.common.token_url.clone();
        flags.audience = self.jwt.audience.clone();
        flags.instance_url = self.access.instance_url.clone();
        flags.api_version = self.common.api_version.clone();
        flags.session_timeout_minutes = self.common.session_timeout;
        flags.client_id = self.app.client_id.clone();
        flags.username = self.user.username.clone();
        flags.scope = self.scope.scope.clone();
        flags.callback_url = self.callback.callback_url.clone();
        flags.pubsub_endpoint = self.common.pubsub_endpoint.clone();
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
