//! Where tokens may go: [`UrlPolicy`] (https Salesforce hosts, or origins the operator allows
//! explicitly), the OAuth [`Endpoints`] of an authorization server, Salesforce's well-known
//! login hosts, and the REST API version forcelink speaks by default ([`DEFAULT_API_VERSION`]).

use std::net::IpAddr;

use url::Url;

use crate::error::AuthError;

/// Production login host.
pub const PRODUCTION_LOGIN_URL: &str = "https://login.salesforce.com";
/// Sandbox login host.
pub const SANDBOX_LOGIN_URL: &str = "https://test.salesforce.com";

/// The REST API version used unless a connection or a client names one: 64.0 (Summer '25).
/// Pinned, not discovered, so an org upgrade never changes answers under a running integration.
/// The one definition for every forcelink crate (the client's default, a stored connection's).
pub const DEFAULT_API_VERSION: &str = "64.0";

/// The hosts Salesforce serves logins, APIs and My Domains from: these two, and every
/// subdomain of the domains in [`SALESFORCE_DOMAINS`].
pub const SALESFORCE_LOGIN_HOSTS: [&str; 2] = ["login.salesforce.com", "test.salesforce.com"];
/// Salesforce's domains (My Domain, instances, Experience Cloud sites, government and China
/// clouds): a host that is a subdomain of one of these is a Salesforce host.
pub const SALESFORCE_DOMAINS: [&str; 7] =
    ["salesforce.com", "force.com", "site.com", "cloudforce.com", "database.com", "salesforce.mil", "sfcrmproducts.cn"];

/// The rule every refusal names, so the fix is in the message.
pub const HOST_RULE: &str = "secrets and tokens go only to https Salesforce hosts (login.salesforce.com, \
     test.salesforce.com, or a subdomain of salesforce.com, force.com, site.com, cloudforce.com, database.com, \
     salesforce.mil, sfcrmproducts.cn) or to origins the operator allows (--allow-origin)";

/// Decides which URLs may receive a token or a secret: `https` Salesforce hosts, and the exact
/// origins (`scheme://host:port`) allowed with [`UrlPolicy::allow_origin`].
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    // Exact origins allowed besides Salesforce's hosts (e.g. a playground on loopback).
    allowed: Vec<url::Origin>,
    // Any loopback origin (tests and local tools only; never the CLI's or the broker's default).
    any_loopback: bool,
}

impl UrlPolicy {
    /// https Salesforce hosts only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also allows the origin of `origin` (`http://127.0.0.1:8411`): scheme, host and port must
    /// match exactly. A path other than `/`, a query, a fragment or user info is refused, so an
    /// allowed origin cannot be mistaken for a URL prefix.
    pub fn allow_origin(mut self, origin: &str) -> Result<Self, AuthError> {
        let parsed = parse_origin(origin)?;
        if !self.allowed.contains(&parsed) {
            self.allowed.push(parsed);
        }
        Ok(self)
    }

    /// Also allows every loopback origin (`127.0.0.0/8`, `::1`, `localhost`), over http or https.
    /// For tests and local experiments: the CLI and the broker allow exact origins only.
    pub fn allow_any_loopback(mut self) -> Self {
        self.any_loopback = true;
        self
    }

    /// The origins allowed besides Salesforce's hosts, as `scheme://host:port`.
    pub fn allowed_origins(&self) -> Vec<String> {
        self.allowed.iter().map(url::Origin::ascii_serialization).collect()
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

    /// Checks `url` may receive credentials: [`AuthError::InsecureUrl`] naming `what` when not.
    pub fn check(&self, what: &str, url: &Url) -> Result<(), AuthError> {
        let refuse =
            |reason: String| AuthError::InsecureUrl { what: what.to_owned(), url: display_origin(url), reason };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("a URL with user info is never used".to_owned()));
        }
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        if url.scheme() == "https" && is_salesforce_host(&host) {
            return Ok(());
        }
        if self.allowed.contains(&url.origin()) {
            return Ok(());
        }
        if self.any_loopback && matches!(url.scheme(), "http" | "https") && is_loopback(&host) {
            return Ok(());
        }
        Err(refuse(HOST_RULE.to_owned()))
    }
}

/// Whether `host` (lowercase) is one of Salesforce's hosts.
pub fn is_salesforce_host(host: &str) -> bool {
    SALESFORCE_LOGIN_HOSTS.contains(&host)
        || SALESFORCE_DOMAINS.iter().any(|domain| {
            host.strip_suffix(domain).and_then(|rest| rest.strip_suffix('.')).is_some_and(|sub| !sub.is_empty())
        })
}

fn parse_origin(text: &str) -> Result<url::Origin, AuthError> {
    let bad = |why: &str| {
        AuthError::Config(format!(
            "allowed origin {text:?} {why}; write it as scheme://host:port, e.g. http://127.0.0.1:8411"
        ))
    };
    let url = Url::parse(text.trim()).map_err(|_| bad("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("is not http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("has user info"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a path, query or fragment"));
    }
    Ok(url.origin())
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
    /// Where users approve the app (`/services/oauth2/authorize` on Salesforce).
    pub authorize: Url,
    /// Where tokens are requested (`/services/oauth2/token`).
    pub token: Url,
    /// Where tokens are revoked (`/services/oauth2/revoke`, RFC 7009).
    pub revoke: Url,
    /// Where tokens are introspected (`/services/oauth2/introspect`, RFC 7662).
    pub introspect: Url,
    /// The OpenID Connect userinfo endpoint (`/services/oauth2/userinfo`).
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
    fn salesforce_hosts_over_https_and_allowed_origins_only() {
        let p = UrlPolicy::new();
        for ok in [
            "https://login.salesforce.com",
            "https://test.salesforce.com/services/oauth2/token",
            "https://acme.my.salesforce.com",
            "https://acme--dev.sandbox.my.salesforce.com",
            "https://acme.lightning.force.com",
            "https://acme.my.site.com",
            "https://na1.cloudforce.com",
            "https://x.database.com",
            "https://acme.my.salesforce.mil",
            "https://acme.my.sfcrmproducts.cn",
            "https://api.pubsub.salesforce.com:7443",
        ] {
            assert!(p.check_str("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://acme.my.salesforce.com",
            "https://salesforce.com",
            "https://evilsalesforce.com",
            "https://salesforce.com.evil.example",
            "https://acme.my.salesforce.com.evil.example",
            "https://example.com",
            "http://127.0.0.1:8411",
            "https://localhost",
            "https://user:pw@acme.my.salesforce.com",
            "ftp://login.salesforce.com",
        ] {
            let err = p.check_str("login_url", bad).unwrap_err();
            assert!(matches!(err, AuthError::InsecureUrl { .. }), "{bad}: {err}");
        }
        let text = p.check_str("instance_url", "https://evil.example/?token=abc").unwrap_err().to_string();
        assert!(text.contains("https://evil.example") && text.contains("--allow-origin"), "{text}");
        assert!(!text.contains("abc"), "{text}");
        assert!(p.check_str("x", "not a url").is_err());

        let local = UrlPolicy::new().allow_origin("http://127.0.0.1:8411").unwrap();
        assert!(local.check_str("x", "http://127.0.0.1:8411/services/oauth2/token").is_ok());
        assert!(local.check_str("x", "http://127.0.0.1:8412").is_err(), "another port is another origin");
        assert!(local.check_str("x", "https://127.0.0.1:8411").is_err(), "another scheme is another origin");
        assert!(local.check_str("x", "http://localhost:8411").is_err());
        assert_eq!(local.allowed_origins(), ["http://127.0.0.1:8411"]);
        for bad in ["http://127.0.0.1:8411/path", "http://h?x=1", "ftp://h", "http://u:p@h", "nope"] {
            assert!(UrlPolicy::new().allow_origin(bad).is_err(), "{bad}");
        }
        let tests = UrlPolicy::new().allow_any_loopback();
        assert!(tests.check_str("x", "http://[::1]:1").is_ok() && tests.check_str("x", "http://localhost:2").is_ok());
        assert!(tests.check_str("x", "http://10.0.0.1").is_err());
    }

    #[test]
    fn salesforce_paths() {
        let e = Endpoints::salesforce(&Url::parse("https://login.salesforce.com/some/path?x=1").unwrap());
        assert_eq!(e.token.as_str(), "https://login.salesforce.com/services/oauth2/token");
        assert_eq!(e.token_origin().as_str(), "https://login.salesforce.com/");
        assert!(is_generic_login_host(&e.token));
    }
}
