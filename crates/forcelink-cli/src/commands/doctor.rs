//! `forcelink doctor CONNECTION`: checks a connection step by step — settings, secrets, the
//! flow's own requirements, reachability, clock skew, a token, its validity, approvals — and
//! names the fix for each problem.

use std::time::{Duration, SystemTime};

use forcelink_auth::approvals::MAX_APPROVALS_PER_USER_AND_APP;
use forcelink_auth::endpoint::is_generic_login_host;
use forcelink_auth::identity::{AnyToken, IdentityClient};
use forcelink_store::connection::SecretRef;
use forcelink_store::{AuthConfig, Connection, Environment, Method};
use serde::Serialize;
use serde_json::json;

use super::{Opened, token_cache};
use crate::failure::{Failure, Kind};
use crate::outcome::Outcome;
use crate::settings::Settings;

/// Clock skew that starts to matter: JWT assertions live at most 3 minutes.
pub const SKEW_WARN: Duration = Duration::from_secs(60);
pub const SKEW_FAIL: Duration = Duration::from_secs(170);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn ok(&mut self, check: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { check, status: Status::Ok, detail: detail.into(), fix: None });
    }
    fn warn(&mut self, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check { check, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) });
    }
    fn fail(&mut self, check: &'static str, detail: impl Into<String>, fix: Option<String>) {
        self.checks.push(Check { check, status: Status::Fail, detail: detail.into(), fix });
    }
    fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }
}

pub async fn run(settings: &Settings, name: Option<&str>) -> Result<Outcome, Failure> {
    let name = settings.connection_name(name)?;
    let store = settings.open_store().await?;
    let Some((spec, origins)) = settings.spec(&*store, &name).await? else {
        return Err(settings.unknown(&*store, &name).await);
    };
    let mut r = Report::default();
    let sources = origins.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(" + ");
    let connection = match spec.validate(name.as_str(), &settings.url_policy()) {
        Ok(c) => {
            r.ok(
                "settings",
                format!(
                    "method {}, login URL {}, from {sources}",
                    c.method(),
                    c.login_url.origin().ascii_serialization()
                ),
            );
            Some(c)
        }
        Err(e) => {
            r.fail(
                "settings",
                e.0,
                Some(format!("complete it: `forcelink connection add {name} --replace …` (from {sources})")),
            );
            None
        }
    };
    if let Some(c) = connection {
        let opened = Opened { store: store.clone(), connection: c };
        diagnose(settings, &opened, &mut r).await;
    }
    let failed = r.failed();
    let mut human = format!("forcelink doctor {name}\n");
    for c in &r.checks {
        let mark = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        human.push_str(&format!("  [{mark}] {:<14} {}\n", c.check, c.detail));
        if let Some(f) = &c.fix {
            human.push_str(&format!("         {:<14} fix: {f}\n", ""));
        }
    }
    let problems = r.checks.iter().filter(|c| c.status == Status::Fail).count();
    human.push_str(&if failed { format!("{problems} problem(s) found\n") } else { "no problems found\n".to_owned() });
    let mut out = Outcome::new(json!({ "name": name.as_str(), "healthy": !failed, "checks": r.checks }), human);
    if failed {
        out.exit = Kind::Config.exit_code();
    }
    Ok(out)
}

async fn diagnose(settings: &Settings, opened: &Opened, r: &mut Report) {
    let c = &opened.connection;
    let secrets = settings.env.resolver();
    // Secrets: every reference must resolve.
    let mut secrets_ok = true;
    for (field, secret) in secret_refs(c) {
        match secrets.resolve(field, secret) {
            Ok(value) => {
                if field == "private_key" && !value.contains("PRIVATE KEY-----") {
                    secrets_ok = false;
                    r.fail(
                        "secrets",
                        "private_key is not a PEM private key",
                        Some("point it at the .key file `forcelink keygen` wrote (file:PATH)".into()),
                    );
                }
                if let SecretRef::File(path) = secret {
                    check_file_mode(path, field, r);
                }
            }
            Err(e) => {
                secrets_ok = false;
                let fix = match secret {
                    SecretRef::Env(n) => format!("export {n}=… in the environment that runs forcelink"),
                    SecretRef::File(p) => format!("create {} or change the reference", p.display()),
                    SecretRef::Value(_) => "set the value again".to_owned(),
                };
                r.fail("secrets", e.0, Some(fix));
            }
        }
    }
    if secrets_ok {
        r.ok("secrets", "every secret resolves");
    }
    method_checks(c, r);
    if r.failed() {
        r.warn("reachability", "not checked (fix the problems above first)", "run doctor again");
        return;
    }
    reachability(settings, c, r).await;
    if !secrets_ok || r.failed() {
        r.warn("token", "not requested (fix the problems above first)", "run doctor again");
        return;
    }
    let cache = match token_cache(settings, opened) {
        Ok(cache) => cache,
        Err(f) => return r.fail("token", f.message, f.fix),
    };
    let token = match cache.get_token().await {
        Ok(t) => t,
        Err(e) => {
            let f = Failure::from_auth(e);
            let fix = f.fix.clone().or_else(|| {
                (f.kind == Kind::SignIn).then(|| format!("run `forcelink login {} {}`", c.method(), c.name))
            });
            return r.fail("token", f.message, fix);
        }
    };
    let expires = token.expires_at.map(super::rfc3339).unwrap_or_else(|| "unknown".into());
    r.ok("token", format!("obtained (expires {expires})"));
    // Validity: introspection when the app's secret is known, else userinfo.
    let transport = match settings.transport() {
        Ok(t) => t,
        Err(f) => return r.fail("validity", f.message, f.fix),
    };
    let app = c.app_credentials(&secrets).ok().flatten();
    match app.filter(|a| a.client_secret.is_some()) {
        Some(app) => match IdentityClient::new(transport, c.endpoints(), app) {
            Ok(id) => match id.introspect(AnyToken::Access(&token.access_token)).await {
                Ok(i) if i.active => r.ok("validity", format!("introspection: active{}", i.username.map(|u| format!(" for {u}")).unwrap_or_default())),
                Ok(_) => r.fail("validity", "introspection says the token is not active", Some(format!("run `forcelink login {} {}`", c.method(), c.name))),
                Err(e) => r.warn("validity", format!("introspection failed: {e}"), "enable introspection for the app (Setup > App Manager > the app > Introspect All Tokens) so forcelink learns real expiry"),
            },
            Err(e) => r.warn("validity", e.to_string(), "check the app's credentials"),
        },
        None => {
            let id = IdentityClient::new(transport, forcelink_auth::Endpoints::salesforce(&token.instance_url), forcelink_auth::AppCredentials::new("", None));
            match id.map(|id| async move { id.userinfo(&token).await }) {
                Ok(fut) => match fut.await {
                    Ok(info) => r.ok("validity", format!("userinfo: {}", info.preferred_username.unwrap_or(info.sub))),
                    Err(e) => r.warn("validity", format!("userinfo failed: {e}"), "grant the openid or id scope to see who the token belongs to"),
                },
                Err(e) => r.warn("validity", e.to_string(), "check the instance URL"),
            }
        }
    }
    // Approvals (only refresh-token grants count against the five).
    if c.method().is_interactive()
        && let Ok(Some(stored)) = opened.store.load(&c.name).await
        && let (Some(user), Some(client_id)) = (stored.set.user_id(), c.auth.client_id())
    {
        match opened.store.approvals(user, client_id).await {
            Ok(list) if list.len() >= MAX_APPROVALS_PER_USER_AND_APP => r.warn(
                "approvals",
                format!("{} of {MAX_APPROVALS_PER_USER_AND_APP} approvals of this app by the user are in use", list.len()),
                "a new sign-in of this user to this app revokes the oldest connection's refresh token; log out connections you no longer need",
            ),
            Ok(list) => r.ok("approvals", format!("{} of {MAX_APPROVALS_PER_USER_AND_APP} approvals of this app by the user in use", list.len())),
            Err(e) => r.warn("approvals", e.to_string(), "check the store"),
        }
    }
}

fn secret_refs(c: &Connection) -> Vec<(&'static str, &SecretRef)> {
    let mut out = Vec::new();
    match &c.auth {
        AuthConfig::AccessToken { access_token } => out.push(("access_token", access_token)),
        AuthConfig::ClientCredentials { client_secret, .. } => out.push(("client_secret", client_secret)),
        AuthConfig::Jwt { private_key, client_secret, .. } => {
            out.push(("private_key", private_key));
            out.extend(client_secret.iter().map(|s| ("client_secret", s)));
        }
        AuthConfig::Web { client_secret, .. } | AuthConfig::Device { client_secret, .. } => {
            out.extend(client_secret.iter().map(|s| ("client_secret", s)))
        }
        AuthConfig::Password { client_secret, password, security_token, .. } => {
            out.extend(client_secret.iter().map(|s| ("client_secret", s)));
            out.push(("password", password));
            out.extend(security_token.iter().map(|s| ("security_token", s)));
        }
        _ => {}
    }
    out
}

fn check_file_mode(path: &std::path::Path, field: &str, r: &mut Report) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            r.warn(
                "secrets",
                format!(
                    "{field} file {} can be read by other users (mode {:o})",
                    path.display(),
                    meta.permissions().mode() & 0o777
                ),
                format!("chmod 600 {}", path.display()),
            );
        }
    }
}

fn method_checks(c: &Connection, r: &mut Report) {
    let token_host = c.endpoints().token;
    match c.method() {
        Method::ClientCredentials if is_generic_login_host(&token_host) => r.fail(
            "flow",
            format!("client credentials go to {}, which Salesforce refuses for this flow", token_host.origin().ascii_serialization()),
            Some(format!("set the My Domain URL: `forcelink connection add {} --replace --login-url https://MyDomain.my.salesforce.com …`", c.name)),
        ),
        Method::Jwt => {
            let aud = c.audiences();
            if c.environment == Environment::Sandbox && aud.iter().any(|a| a.contains("login.salesforce.com")) {
                r.warn("flow", "a sandbox connection with audience login.salesforce.com", "set --audience https://test.salesforce.com");
            } else {
                r.ok("flow", format!("JWT audience {}", aud.join(", then ")));
            }
        }
        Method::Password => r.warn(
            "flow",
            "username-password is a legacy flow Salesforce is retiring",
            format!("move to jwt: `forcelink keygen`, then `forcelink login jwt {} …`", c.name),
        ),
        Method::AccessToken => r.warn(
            "flow",
            "an access token cannot be renewed: the connection stops working when the session ends",
            "use jwt, client-credentials or web for a connection that keeps working",
        ),
        Method::Web => {
            if let AuthConfig::Web { callback_url, .. } = &c.auth {
                r.ok("flow", format!("web login redirects to {callback_url} (must be a callback URL of the app)"));
            }
        }
        _ => r.ok("flow", format!("{} needs nothing more", c.method())),
    }
}

async fn reachability(settings: &Settings, c: &Connection, r: &mut Report) {
    let http = match forcelink_auth::wire::default_http_client() {
        Ok(h) => h,
        Err(e) => return r.fail("reachability", e.to_string(), None),
    };
    let token = c.endpoints().token;
    if let Err(e) = settings.url_policy().check("token endpoint", &token) {
        return r.fail("reachability", e.to_string(), Some("use the https URL of the org".into()));
    }
    #[allow(clippy::disallowed_methods)] // the binary reads the wall clock to measure skew
    let sent = SystemTime::now();
    // A GET of the token endpoint answers 4xx quickly without credentials: enough to know the
    // host is there and to read its clock.
    match http.get(token.clone()).timeout(Duration::from_secs(10)).send().await {
        Ok(resp) => {
            r.ok(
                "reachability",
                format!("{} answered HTTP {}", token.origin().ascii_serialization(), resp.status().as_u16()),
            );
            let server = resp
                .headers()
                .get("date")
                .and_then(|d| d.to_str().ok())
                .and_then(|d| httpdate::parse_http_date(d).ok());
            if let Some(server) = server {
                #[allow(clippy::disallowed_methods)] // the binary reads the wall clock to measure skew
                let now = SystemTime::now();
                let local = sent + now.duration_since(sent).unwrap_or_default() / 2;
                let skew = server.duration_since(local).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
                let text = format!("this machine and the server differ by about {} s", skew.as_secs());
                if skew > SKEW_FAIL {
                    r.fail(
                        "clock",
                        text,
                        Some(
                            "synchronise this machine's clock (NTP): JWT assertions and token expiry depend on it"
                                .into(),
                        ),
                    );
                } else if skew > SKEW_WARN {
                    r.warn("clock", text, "synchronise this machine's clock (NTP)");
                } else {
                    r.ok("clock", text);
                }
            }
        }
        Err(e) => r.fail(
            "reachability",
            format!("cannot reach {}: {e}", token.origin().ascii_serialization()),
            Some("check the URL, DNS, proxy and firewall (HTTPS_PROXY is honoured)".into()),
        ),
    }
}

#[cfg(test)]
mod tests {
    fn parse_http_date(s: &str) -> Option<std::time::SystemTime> {
        httpdate::parse_http_date(s).ok()
    }

    #[test]
    fn http_dates_round_trip_with_rfc3339() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(super::super::rfc3339(t), "1994-11-06T08:49:37Z");
        let t = parse_http_date("Sun, 22 Nov 2026 00:00:00 GMT").unwrap();
        assert_eq!(super::super::rfc3339(t), "2026-11-22T00:00:00Z");
        assert!(parse_http_date("yesterday").is_none());
    }
}
