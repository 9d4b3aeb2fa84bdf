//! `forcelink login web|device|jwt|client-credentials|password|access-token NAME`: sign in,
//! store the tokens (encrypted), and save the connection's settings when flags gave any. Each
//! method is a subcommand with only the flag groups (`flags`) its flow uses.

use forcelink_store::AuditAction;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::approvals::{ApprovalBudget, ApprovalOutlook};
use forcelink_auth::flows::device::{DeviceAuthorization, DeviceCodeDisplay, DeviceFlow};
use forcelink_auth::flows::loopback::LoopbackRedirect;
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::flows::web_server::WebServerFlow;
use forcelink_auth::store::Approval;
use forcelink_auth::{AppCredentials, ConnectionId, TokenSet};
use forcelink_store::{AuthConfig, Connection, ConnectionSpec, Method, PutMode};
use serde_json::json;

use super::flags::{
    AccessTokenFlags, AppFlags, CallbackFlag, CommonFlags, ConnectionFlags, JwtFlags, PasswordFlags, ScopeFlag,
    UserFlag,
};
use super::{Opened, audit, client_over, prompt_missing, token_cache};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::{Origin, Settings};

/// Scopes asked for in interactive logins when the connection names none: API access and a
/// refresh token, so the connection keeps working without the person.
pub const DEFAULT_INTERACTIVE_SCOPE: &str = "api refresh_token";
/// How long the web login waits for the browser's redirect by default: 5 minutes.
pub const DEFAULT_WEB_TIMEOUT_SECS: u64 = 300;

/// One subcommand per auth method, each with only the flags its flow uses.
#[derive(Debug, clap::Subcommand)]
pub enum LoginCommand {
    /// Web server flow with PKCE: opens the browser (or prints the URL) and waits for the
    /// redirect on the loopback callback URL.
    Web(WebLogin),
    /// Device flow: shows a code to enter on another device's browser.
    Device(AppLogin),
    /// JWT bearer flow (server to server; key from `forcelink keygen`).
    Jwt(JwtLogin),
    /// Client credentials flow (server to server; needs a Run As user and the My Domain URL).
    ClientCredentials(AppLogin),
    /// Username-password flow (legacy: Salesforce is retiring it).
    Password(PasswordLogin),
    /// Use an access token obtained elsewhere, with the instance URL.
    AccessToken(AccessTokenLogin),
}

/// What every login takes: the connection and where its org is.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Connection name; created when it does not exist.
    pub name: String,
    #[command(flatten)]
    pub common: CommonFlags,
}

/// What every login through a connected app takes (all but access-token).
#[derive(Debug, clap::Args)]
pub struct AppLoginArgs {
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub app: AppFlags,
}

impl AppLoginArgs {
    /// The connection name, and these flags with the method's own groups from `rest`.
    fn with(self, rest: ConnectionFlags) -> (String, ConnectionFlags) {
        (self.login.name, ConnectionFlags { common: self.login.common, app: self.app, ..rest })
    }
}

/// `login web`.
#[derive(Debug, clap::Args)]
pub struct WebLogin {
    #[command(flatten)]
    pub base: AppLoginArgs,
    #[command(flatten)]
    pub scope: ScopeFlag,
    // Passed to Salesforce as a login hint.
    #[command(flatten)]
    pub user: UserFlag,
    #[command(flatten)]
    pub callback: CallbackFlag,
    /// Print the URL only; do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the redirect.
    #[arg(long, default_value_t = DEFAULT_WEB_TIMEOUT_SECS)]
    pub timeout: u64,
}

/// `login device` and `login client-credentials`: the app and the scopes.
#[derive(Debug, clap::Args)]
pub struct AppLogin {
    #[command(flatten)]
    pub base: AppLoginArgs,
    #[command(flatten)]
    pub scope: ScopeFlag,
}

/// `login jwt`.
#[derive(Debug, clap::Args)]
pub struct JwtLogin {
    #[command(flatten)]
    pub base: AppLoginArgs,
    #[command(flatten)]
    pub user: UserFlag,
    #[command(flatten)]
    pub jwt: JwtFlags,
}

/// `login password`.
#[derive(Debug, clap::Args)]
pub struct PasswordLogin {
    #[command(flatten)]
    pub base: AppLoginArgs,
    #[command(flatten)]
    pub user: UserFlag,
    #[command(flatten)]
    pub password: PasswordFlags,
}

/// `login access-token`.
#[derive(Debug, clap::Args)]
pub struct AccessTokenLogin {
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub access: AccessTokenFlags,
}

/// The web login's own options: print the URL only, and how long to wait.
#[derive(Debug, Clone, Copy)]
struct WebOptions {
    no_browser: bool,
    timeout: u64,
}

impl LoginCommand {
    /// The method, the connection name, its settings as flags, and the web login's options.
    fn into_parts(self) -> (Method, String, ConnectionFlags, Option<WebOptions>) {
        let none = ConnectionFlags::default;
        let (method, (name, flags), web) = match self {
            LoginCommand::Web(a) => (
                Method::Web,
                a.base.with(ConnectionFlags { scope: a.scope, user: a.user, callback: a.callback, ..none() }),
                Some(WebOptions { no_browser: a.no_browser, timeout: a.timeout }),
            ),
            LoginCommand::Device(a) => {
                (Method::Device, a.base.with(ConnectionFlags { scope: a.scope, ..none() }), None)
            }
            LoginCommand::ClientCredentials(a) => {
                (Method::ClientCredentials, a.base.with(ConnectionFlags { scope: a.scope, ..none() }), None)
            }
            LoginCommand::Jwt(a) => {
                (Method::Jwt, a.base.with(ConnectionFlags { user: a.user, jwt: a.jwt, ..none() }), None)
            }
            LoginCommand::Password(a) => {
                (Method::Password, a.base.with(ConnectionFlags { user: a.user, password: a.password, ..none() }), None)
            }
            LoginCommand::AccessToken(a) => {
                let flags = ConnectionFlags { common: a.login.common, access: a.access, ..none() };
                (Method::AccessToken, (a.login.name, flags), None)
            }
        };
        (method, name, flags, web)
    }
}

pub async fn run(settings: &Settings, command: LoginCommand) -> Result<Outcome, Failure> {
    let (method, name, flags, web) = command.into_parts();
    let name = settings.connection_name(Some(&name))?;
    let (flag_spec, mut warnings) = flags.to_spec(Some(method))?;
    let store = settings.open_store().await?;
    let existing = settings.spec(&*store, &name).await?;
    let stored_spec = store.connection(&name).await?.map(|c| c.spec).unwrap_or_default();
    let mut spec = existing.as_ref().map(|(s, _)| s.clone()).unwrap_or_default().overlay(&flag_spec);
    prompt_missing(&mut spec)?;
    let connection = spec.validate(name.as_str(), &settings.url_policy())?;
    // What the store should hold afterwards: its own settings plus the flags (never the
    // config file's or the environment's, which stay where they are).
    let mut to_store = stored_spec.clone().overlay(&flag_spec);
    for field in
        changed_by_prompt(&existing.as_ref().map(|(s, _)| s.clone()).unwrap_or_default().overlay(&flag_spec), &spec)
    {
        to_store.set_field(field, &field_text(&spec, field))?;
    }
    let from_elsewhere = existing.as_ref().is_some_and(|(_, o)| o.iter().any(|o| *o != Origin::Store));
    let save = to_store != stored_spec
        && !(from_elsewhere && flag_spec == ConnectionSpec { method: Some(method), ..Default::default() });

    let transport = settings.transport()?;
    let secrets = settings.env.resolver();
    let app = connection.app_credentials(&secrets)?;
    let budget = ApprovalBudget::new(store.clone());
    let previous = store.load(&name).await?.map(|s| s.set);
    // The ledger knows users by id; before a sign-in only a re-authorization tells who it is.
    if method.is_interactive()
        && let (Some(user), Some(app)) = (previous.as_ref().and_then(|p| p.user_id()), app.as_ref())
        && let ApprovalOutlook::WouldEvict { oldest } = budget.before_approval(user, &app.client_id, &name).await?
    {
        warnings.push(format!(
            "this user has approved this connected app 5 times: this sign-in makes Salesforce revoke the refresh token of connection {}",
            oldest.connection
        ));
    }

    let set = match (&connection.auth, web) {
        (AuthConfig::Web { callback_url, scope, .. }, Some(web)) => {
            let app = app.clone().unwrap_or_else(|| AppCredentials::new("", None));
            web_login(settings, &connection, app, callback_url, scope.as_deref(), spec.username.as_deref(), web).await?
        }
        (AuthConfig::Device { scope, .. }, _) => {
            let app = app.clone().unwrap_or_else(|| AppCredentials::new("", None));
            let flow = DeviceFlow::new(transport.clone(), connection.endpoints(), app)?
                .with_scope(scope.clone().unwrap_or_else(|| DEFAULT_INTERACTIVE_SCOPE.to_owned()));
            flow.authorize(&StderrDisplay).await?
        }
        _ => {
            let source = connection.token_source(&transport, &secrets)?;
            let set = source.fetch(None).await?;
            if method == Method::AccessToken {
                // A pasted token is checked before it is kept.
                let token =
                    StaticToken::new(&settings.url_policy(), set.instance_url.as_str(), set.access_token.clone())?;
                let client = client_over(settings, &connection, Arc::new(token))?;
                super::api_check(&client).await.map_err(|f| {
                    f.with_fix("get a current access token (e.g. from the org's session) and run the login again")
                })?;
            }
            set
        }
    };

    if save {
        store.put_connection(&name, &to_store, PutMode::Upsert).await?;
    }
    let opened = Opened { store: store.clone(), connection: connection.clone() };
    let cache = token_cache(settings, &opened)?;
    cache.adopt(set.clone()).await?;
    if set.refresh_token.is_some()
        && let (Some(user), Some(app)) = (set.user_id(), app.as_ref())
    {
        #[allow(clippy::disallowed_methods)] // the binary reads the wall clock
        let approved_at = SystemTime::now();
        let evicted = budget
            .record(Approval {
                user: user.to_owned(),
                client_id: app.client_id.clone(),
                connection: name.clone(),
                approved_at,
            })
            .await?;
        for e in evicted {
            warnings.push(format!(
                "this was the sixth approval of the app by this user: Salesforce revoked connection {}'s refresh token; sign it in again when needed",
                e.connection
            ));
        }
    }
    // A re-authorization replaces the connection's grant: revoke the old refresh token, which
    // Salesforce would otherwise keep counting against the user's five approvals.
    if let (Some(old), Some(new)) =
        (previous.as_ref().and_then(|p| p.refresh_token.as_ref()), set.refresh_token.as_ref())
        && old.secret() != new.secret()
    {
        let app = app.clone().unwrap_or_else(|| AppCredentials::new("", None));
        let revoked =
            match forcelink_auth::identity::IdentityClient::new(transport.clone(), connection.endpoints(), app) {
                Ok(id) => id.revoke(forcelink_auth::identity::AnyToken::Refresh(old)).await.is_ok(),
                Err(_) => false,
            };
        if !revoked {
            warnings.push("the previous refresh token of this connection could not be revoked; it still counts as one of the user's five approvals until it expires".into());
        }
    }
    if method.is_interactive() && set.refresh_token.is_none() {
        warnings.push(format!(
            "Salesforce issued no refresh token: the connection works until the session ends. Add the refresh_token scope to the app (and --scope \"api refresh_token\") to keep {name} signed in"
        ));
    }
    if method == Method::Password {
        warnings
            .push("username-password is a legacy flow Salesforce is retiring; prefer jwt or client-credentials".into());
    }
    audit(settings, &*store, &name, AuditAction::Login, Some(format!("method {method}"))).await;
    Ok(login_outcome(&name, method, &set, save, warnings))
}

fn login_outcome(name: &ConnectionId, method: Method, set: &TokenSet, saved: bool, warnings: Vec<String>) -> Outcome {
    let mut out = Outcome::new(
        json!({
            "name": name.as_str(),
            "method": method,
            "instance_url": super::base_url(&set.instance_url),
            "user_id": set.user_id(),
            "org_id": set.org_id(),
            "expires_at": set.expires_at.map(super::rfc3339),
            "has_refresh_token": set.refresh_token.is_some(),
            "saved_settings": saved,
        }),
        format!(
            "signed in: connection {name} ({method}) as user {} of org {} on {}\nnext: `forcelink token get {name}`\n",
            set.user_id().unwrap_or("?"),
            set.org_id().unwrap_or("?"),
            set.instance_url.origin().ascii_serialization()
        ),
    );
    out.warnings = warnings;
    out
}

/// Fields a prompt filled in (present in `after`, absent in `before`).
fn changed_by_prompt(before: &ConnectionSpec, after: &ConnectionSpec) -> Vec<&'static str> {
    let b = serde_json::to_value(before).unwrap_or_default();
    let a = serde_json::to_value(after).unwrap_or_default();
    super::required_fields(after.method.unwrap_or(Method::Web))
        .iter()
        .copied()
        .filter(|f| b.get(*f).is_none() && a.get(*f).is_some())
        .collect()
}

fn field_text(spec: &ConnectionSpec, field: &str) -> String {
    serde_json::to_value(spec)
        .ok()
        .and_then(|v| v.get(field).and_then(|x| x.as_str().map(str::to_owned)))
        .unwrap_or_default()
}

async fn web_login(
    settings: &Settings,
    connection: &Connection,
    app: AppCredentials,
    callback_url: &url::Url,
    scope: Option<&str>,
    username: Option<&str>,
    web: WebOptions,
) -> Result<TokenSet, Failure> {
    let WebOptions { no_browser, timeout } = web;
    let port = callback_url.port_or_known_default().unwrap_or(0);
    let listener = LoopbackRedirect::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), callback_url.path())
        .await
        .map_err(|e| {
            Failure::from_auth(e).with_fix(format!(
                "free port {port} or set another callback_url (it must also be a callback URL of the connected app)"
            ))
        })?;
    // Keep the registered host name (usually `localhost`); only a port 0 becomes the real port.
    let mut redirect_uri = callback_url.clone();
    if port == 0 {
        let _ = redirect_uri.set_port(listener.redirect_uri().port());
    }
    let transport = settings.transport()?;
    let mut flow = WebServerFlow::new(transport, connection.endpoints(), app, redirect_uri)?
        .with_scope(scope.unwrap_or(DEFAULT_INTERACTIVE_SCOPE));
    if let Some(u) = username {
        flow = flow.with_login_hint(u);
    }
    let request = flow.authorization_request();
    crate::output::note(&format!("Open this URL in a browser to sign in to {}:\n  {}", connection.name, request.url));
    if !no_browser {
        crate::output::open_browser(request.url.as_str());
    }
    crate::output::note(&format!("waiting for the redirect to {} …", callback_url));
    let code = tokio::time::timeout(Duration::from_secs(timeout), listener.wait_for_code(&request)).await.map_err(
        |_| {
            Failure::failed(format!("no sign-in within {timeout} seconds"))
                .with_fix("if the browser showed an error (redirect_uri_mismatch: add the callback URL to the app; invalid client id: check --client-id and the login URL), fix it and run the login again; otherwise raise --timeout")
        },
    )??;
    Ok(flow.exchange(&request, &code).await?)
}

/// Shows the device code on standard error (standard output stays for the result).
struct StderrDisplay;

impl DeviceCodeDisplay for StderrDisplay {
    fn show(&self, a: &DeviceAuthorization) {
        crate::output::note(&format!(
            "To sign in, open {} on any device and enter the code:\n  user code: {}",
            a.verification_uri, a.user_code
        ));
        if let Some(complete) = &a.verification_uri_complete {
            crate::output::note(&format!("  (or open {complete})"));
        }
        crate::output::note("waiting for approval …");
    }
}
