//! Where tokens may go: [`UrlPolicy`] (https, or plain http only to loopback or explicitly
//! allowed hosts), the OAuth [`Endpoints`] of an authorization server, and Salesforce's
//! well-known login hosts.

use std::net::IpAddr;

use url::Url;

use crate::error::AuthError;

/// Production login host.
pub const PRODUCTION_LOGIN_URL: &str = "https://login.salesforce.com";
/// Sandbox login host.
pub const SANDBOX_LOGIN_URL: &str = "https://test.salesforce.com";

/// Decides which URLs may receive a token or a secret.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    insecure_hosts: Vec<String>,
}

impl UrlPolicy {
    /// https anywhere; plain http only to loopback (`127.0.0.0/8`, `::1`, `localhost`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows plain http to `host` (e.g. a playground on a private network).
    pub fn allow_insecure_host(mut self, host: impl Into<String>) -> Self {
        self.insecure_hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Parses `raw` and checks it may receive credentials. `what` names the setting in errors.
    pub fn check_str(&self, what: &str, raw: &str) -> Result<Url, AuthError> {
        let url = Url::parse(raw.trim()).map_err(|e| {
            AuthError::Config(format!(
                "{what} is not a valid URL ({e}); expected e.g. https://MyDomain.my.salesforce.com"
            ))
        })?;
        self.check(what, &url)?;
        Ok(url)
    }

    pub fn check(&self, what: &str, url: &Url) -> Result<(), AuthError> {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        match url.scheme() {
            "https" if !host.is_empty() => Ok(()),
            "http" if is_loopback(&host) || self.insecure_hosts.contains(&host) => Ok(()),
            "http" => Err(AuthError::InsecureUrl {
                what: what.to_owned(),
                url: display_origin(url),
                reason: "plain http is allowed only to loopback hosts; use https".to_owned(),
            }),
            other => Err(AuthError::InsecureUrl {
                what: what.to_owned(),
                url: display_origin(url),
                reason: format!("scheme {other:?} is not https"),
            }),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `scheme://host[:port]` of a URL: what errors may show (never a path or query, which can
/// carry tokens).
pub(crate) fn display_origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// True for `login.salesforce.com` and `test.salesforce.com` (and their `.mil`/government
/// variants are not special-cased: they are My Domain hosts).
pub fn is_generic_login_host(url: &Url) -> bool {
    matches!(
        url.host_str().map(str::to_ascii_lowercase).as_deref(),
        Some("login.salesforce.com" | "test.salesforce.com")
    )
}

/// The endpoints of one authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorize: Url,
    pub token: Url,
    pub revoke: Url,
    pub introspect: Url,
    pub userinfo: Url,
}

impl Endpoints {
    /// Salesforce's paths under a login or My Domain base URL, e.g.
    /// `https://login.salesforce.com` → `…/services/oauth2/token`.
    pub fn salesforce(base: &Url) -> Self {
        let at = |path: &str| {
            let mut u = base.clone();
            u.set_path(path);
            u.set_query(None);
            u.set_fragment(None);
            u
        };
        Self {
            authorize: at("/services/oauth2/authorize"),
            token: at("/services/oauth2/token"),
            revoke: at("/services/oauth2/revoke"),
            introspect: at("/services/oauth2/introspect"),
            userinfo: at("/services/oauth2/userinfo"),
        }
    }

    /// Parses `base` and checks it against `policy` before building Salesforce's endpoints.
    pub fn salesforce_str(policy: &UrlPolicy, base: &str) -> Result<Self, AuthError> {
        Ok(Self::salesforce(&policy.check_str("login URL", base)?))
    }

    pub(crate) fn check(&self, policy: &UrlPolicy) -> Result<(), AuthError> {
        policy.check("authorize endpoint", &self.authorize)?;
        policy.check("token endpoint", &self.token)?;
        policy.check("revoke endpoint", &self.revoke)?;
        policy.check("introspection endpoint", &self.introspect)?;
        policy.check("userinfo endpoint", &self.userinfo)
    }

    /// `scheme://host[:port]` of the token endpoint: the instance URL when a response has none.
    pub(crate) fn token_origin(&self) -> Url {
        let mut u = self.token.clone();
        u.set_path("");
        u.set_query(None);
        u.set_fragment(None);
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_loopback() {
        let p = UrlPolicy::new();
        assert!(p.check_str("x", "https://acme.my.salesforce.com").is_ok());
        assert!(p.check_str("x", "http://127.0.0.1:8411").is_ok());
        assert!(p.check_str("x", "http://[::1]:8411").is_ok());
        assert!(p.check_str("x", "http://localhost:1717").is_ok());
        let err = p.check_str("instance_url", "http://acme.my.salesforce.com/?token=abc").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("http://acme.my.salesforce.com"), "{text}");
        assert!(!text.contains("abc"), "{text}");
        assert!(p.check_str("x", "ftp://example.com").is_err());
        assert!(p.check_str("x", "not a url").is_err());
        assert!(
            p.clone().allow_insecure_host("playground.internal").check_str("x", "http://playground.internal").is_ok()
        );
    }

    #[test]
    fn salesforce_paths() {
        let e = Endpoints::salesforce(&Url::parse("https://login.salesforce.com/some/path?x=1").unwrap());
        assert_eq!(e.token.as_str(), "https://login.salesforce.com/services/oauth2/token");
        assert_eq!(e.token_origin().as_str(), "https://login.salesforce.com/");
        assert!(is_generic_login_host(&e.token));
    }
}
