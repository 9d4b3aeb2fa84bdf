//! Connections: a named org and how to sign in to it.
//!
//! A [`ConnectionSpec`] is the flat shape every source speaks — the TOML config file, the
//! `FORCELINK_CONNECTIONS__NAME__FIELD` environment variables, CLI flags, the broker's HTTP API,
//! the store — with every field optional so sources can be layered ([`ConnectionSpec::overlay`]).
//! [`ConnectionSpec::resolve`] validates it into a [`Connection`], whose [`AuthConfig`] holds
//! exactly what its auth method needs. Secrets are [`SecretRef`]s: a value (stored encrypted),
//! `env:NAME` or `file:PATH`, resolved only when a token is fetched.
//!
//! - `method`: [`Environment`], [`Method`] and each method's settings ([`FieldInfo`]).
//! - `spec`: [`ConnectionSpec`], its fields ([`SECRET_FIELDS`], `FIELD_NAMES`) and sources.
//! - `validate`: validation into a [`Connection`], the host rule and the edit rule
//!   ([`ConnectionSpec::apply_edit`]).
//! - `resolved`: [`Connection`] and [`AuthConfig`]: endpoints, audiences, app credentials.
//! - `source`: building the token source and the [`forcelink_auth::TokenCache`]; revoking.
//! - `secret`: [`SecretRef`] and [`SecretResolver`].
//! - here: names ([`validate_name`]), API versions, Pub/Sub endpoints
//!   ([`parse_pubsub_endpoint`]) and [`ConfigError`].

mod method;
mod resolved;
mod secret;
mod source;
mod spec;
mod validate;

pub use method::{Environment, FieldInfo, Method};
pub use resolved::{AuthConfig, Connection};
pub use secret::{SecretRef, SecretResolver};
pub use source::SourceError;
pub use spec::{ConnectionSpec, SECRET_FIELDS};

/// The API version a connection uses unless it names one (defined once, in forcelink-auth).
pub use forcelink_auth::DEFAULT_API_VERSION;

/// Longest connection name.
pub const MAX_NAME_LEN: usize = 64;

/// A configuration mistake, said so the user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// A configuration error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Where the Pub/Sub API listens unless a connection names another endpoint (the same value as
/// `forcelink_client::pubsub::DEFAULT_PUBSUB_ENDPOINT`; this crate does not depend on the client).
pub const DEFAULT_PUBSUB_ENDPOINT: &str = "api.pubsub.salesforce.com:7443";

/// Checks a Pub/Sub endpoint, `host:port` (a DNS name, an IPv4 address or a bracketed IPv6
/// one, and a port from 1 to 65535), and gives it back trimmed with the host in lowercase.
pub fn parse_pubsub_endpoint(raw: &str) -> Result<String, ConfigError> {
    let s = raw.trim();
    let bad = |why: &str| {
        ConfigError::new(format!(
            "pubsub_endpoint {raw:?} is not host:port ({why}); e.g. {DEFAULT_PUBSUB_ENDPOINT}, or a playground's \
             127.0.0.1:8412"
        ))
    };
    if s.contains("://") {
        return Err(bad("no scheme: the transport follows the instance URL"));
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("the port is missing"))?;
    if !port.bytes().all(|b| b.is_ascii_digit()) || !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err(bad("the port must be a number from 1 to 65535"));
    }
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        }
    };
    if !host_ok {
        return Err(bad("the host must be a DNS name or an IP address"));
    }
    Ok(format!("{}:{port}", host.to_ascii_lowercase()))
}

/// The web login's redirect URI unless the connection names one: the connected app must list
/// it as a callback URL. It is also what the sf CLI registers, so apps made for it work as is.
pub const DEFAULT_CALLBACK_URL: &str = "http://localhost:1717/OauthRedirect";

/// `v59.0`, `59` and `59.0` all mean `59.0`.
pub(crate) fn normalize_api_version(v: &str) -> String {
    let v = v.trim().trim_start_matches(['v', 'V']);
    if v.contains('.') { v.to_owned() } else { format!("{v}.0") }
}

/// The rule for every name users type (connections, checkpoints): 1 to `max_len` letters,
/// digits, `-`, `_` or `.`, starting with a letter or digit.
pub(crate) fn is_typed_name(name: &str, max_len: usize) -> bool {
    !name.is_empty()
        && name.len() <= max_len
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Names are what users type: letters, digits, `-`, `_`, `.`, starting with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), ConfigError> {
    if is_typed_name(name, MAX_NAME_LEN) {
        Ok(())
    } else {
        Err(ConfigError::new(format!(
            "connection name {name:?} is not valid: use up to {MAX_NAME_LEN} letters, digits, '-', '_' or '.', starting with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use forcelink_auth::UrlPolicy;

    use super::spec::FIELD_NAMES;
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
    fn pubsub_endpoints_are_host_port_and_follow_the_host_rule() {
        assert_eq!(parse_pubsub_endpoint(" API.pubsub.salesforce.com:7443 ").unwrap(), DEFAULT_PUBSUB_ENDPOINT);
        assert_eq!(parse_pubsub_endpoint("127.0.0.1:8412").unwrap(), "127.0.0.1:8412");
        assert_eq!(parse_pubsub_endpoint("[::1]:8412").unwrap(), "[::1]:8412");
        for bad in [
            "",
            "api.pubsub.salesforce.com",
            "https://api.pubsub.salesforce.com:7443",
            "api.pubsub.salesforce.com:0",
            "api.pubsub.salesforce.com:70000",
            "api.pubsub.salesforce.com:+1",
            ":7443",
            "user@host:7443",
            "host/path:7443",
            "-bad.example:7443",
            "[not-v6]:7443",
            "a b:7443",
        ] {
            let err = parse_pubsub_endpoint(bad).unwrap_err();
            assert!(err.0.contains("pubsub_endpoint") && err.0.contains("host:port"), "{bad:?}: {err}");
        }

        // Unset: the default, and nothing extra is checked.
        let c = cc("https://acme.my.salesforce.com").validate("p", &UrlPolicy::new()).unwrap();
        assert_eq!((c.pubsub_endpoint.as_deref(), c.pubsub_endpoint_or_default()), (None, DEFAULT_PUBSUB_ENDPOINT));
        let mut s = cc("https://acme.my.salesforce.com");
        s.set_field("pubsub_endpoint", "api.deu.pubsub.salesforce.com:443").unwrap();
        assert_eq!(
            s.validate("p", &UrlPolicy::new()).unwrap().pubsub_endpoint_or_default(),
            "api.deu.pubsub.salesforce.com:443"
        );
        s.set_field("pubsub_endpoint", "nope").unwrap();
        assert!(s.resolve("p").unwrap_err().0.contains("connection p: pubsub_endpoint"));

        // A foreign host is refused, at save (validate) and for an edit (check_urls).
        s.set_field("pubsub_endpoint", "pubsub.evil.example:7443").unwrap();
        for err in [s.validate("p", &UrlPolicy::new()).unwrap_err(), s.check_urls("p", &UrlPolicy::new()).unwrap_err()]
        {
            assert!(err.0.contains("pubsub_endpoint") && err.0.contains("--allow-origin"), "{err}");
        }
        // A playground: reached in clear because its login URL is http, so its http origin must be allowed.
        let playground = UrlPolicy::new().allow_origin("http://127.0.0.1:8411").unwrap();
        let mut p = cc("http://127.0.0.1:8411");
        p.set_field("pubsub_endpoint", "127.0.0.1:8412").unwrap();
        assert!(p.validate("p", &playground).unwrap_err().0.contains("pubsub_endpoint"));
        assert!(p.check_urls("p", &playground).is_err());
        let both = playground.allow_origin("http://127.0.0.1:8412").unwrap();
        assert_eq!(p.validate("p", &both).unwrap().pubsub_endpoint.as_deref(), Some("127.0.0.1:8412"));
        assert!(p.check_urls("p", &both).is_ok());

        // Spelling out the default, or the same endpoint in capitals, moves nothing.
        let old = cc("https://acme.my.salesforce.com");
        let mut same = old.clone();
        same.client_secret = None;
        same.pubsub_endpoint = Some("API.PUBSUB.salesforce.com:7443".into());
        assert!(old.apply_edit(same).is_ok());
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
            ("pubsub_endpoint", "api.deu.pubsub.salesforce.com:443"),
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
