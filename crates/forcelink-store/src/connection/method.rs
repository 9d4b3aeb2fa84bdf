//! [`Environment`] (where the org signs users in), [`Method`] (how a connection signs in) and
//! [`FieldInfo`] (each method's own settings, the one list the CLI, the page and the API read).

use std::fmt;

use forcelink_auth::endpoint::{PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL};
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Where the org signs users in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    /// `https://login.salesforce.com`
    Production,
    /// `https://test.salesforce.com`
    Sandbox,
    /// A My Domain or other custom login URL (`login_url` is required).
    Custom,
}

impl Environment {
    /// The text form (`production`, `sandbox`, `custom`).
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
            Environment::Custom => "custom",
        }
    }
    pub(super) fn preset(self) -> Option<&'static str> {
        match self {
            Environment::Production => Some(PRODUCTION_LOGIN_URL),
            Environment::Sandbox => Some(SANDBOX_LOGIN_URL),
            Environment::Custom => None,
        }
    }
}

/// How a connection signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// An instance URL and an access token obtained elsewhere.
    AccessToken,
    /// Client credentials flow: the app acts as its run-as user.
    ClientCredentials,
    /// JWT bearer flow: the app signs an assertion for a user with its private key.
    Jwt,
    /// Web server flow (authorization code + PKCE) at login; refresh token afterwards.
    Web,
    /// Device flow at login; refresh token afterwards.
    Device,
    /// Username-password (legacy: Salesforce is retiring it).
    Password,
}

impl Method {
    /// Every method, in the order forms and help texts list them.
    pub const ALL: [Method; 6] =
        [Method::AccessToken, Method::ClientCredentials, Method::Jwt, Method::Web, Method::Device, Method::Password];

    /// The text form (`access-token`, `client-credentials`, `jwt`, `web`, `device`, `password`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::AccessToken => "access-token",
            Method::ClientCredentials => "client-credentials",
            Method::Jwt => "jwt",
            Method::Web => "web",
            Method::Device => "device",
            Method::Password => "password",
        }
    }

    /// The method named `s` (its text form), if any.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s.trim())
    }

    /// Methods whose tokens come from an interactive login and are renewed by refresh token.
    pub fn is_interactive(self) -> bool {
        matches!(self, Method::Web | Method::Device)
    }

    /// What a person calls it.
    pub fn label(self) -> &'static str {
        match self {
            Method::AccessToken => "Access token",
            Method::ClientCredentials => "Client credentials",
            Method::Jwt => "JWT bearer",
            Method::Web => "Web server flow (Authorize in the browser)",
            Method::Device => "Device flow",
            Method::Password => "Username and password",
        }
    }

    /// The method's own settings (besides the endpoints every method shares), in form order:
    /// the one list the CLI, the page and the API read.
    pub fn fields(self) -> &'static [FieldInfo] {
        const WEB: [FieldInfo; 3] = [
            CLIENT_ID,
            info("client_secret", "Consumer secret", "password", false, "Needed unless the app is a public client."),
            info("scope", "Scopes", "text", false, "Default: api refresh_token."),
        ];
        const CLIENT_CREDENTIALS: [FieldInfo; 3] = [
            CLIENT_ID,
            info("client_secret", "Consumer secret", "password", true, ""),
            info("scope", "Scopes", "text", false, ""),
        ];
        const JWT: [FieldInfo; 3] = [
            CLIENT_ID,
            info("username", "Username", "text", true, "The user the app acts as."),
            info("private_key", "Private key (PEM)", "textarea", true, "The key whose certificate is in the app."),
        ];
        const PASSWORD: [FieldInfo; 5] = [
            CLIENT_ID,
            info("client_secret", "Consumer secret", "password", false, ""),
            info("username", "Username", "text", true, ""),
            info("password", "Password", "password", true, ""),
            info("security_token", "Security token", "password", false, ""),
        ];
        const ACCESS_TOKEN: [FieldInfo; 2] = [
            info("instance_url", "Instance URL", "url", true, "e.g. https://acme.my.salesforce.com"),
            info("access_token", "Access token", "password", true, "Used until Salesforce refuses it."),
        ];
        match self {
            Method::Web | Method::Device => &WEB,
            Method::ClientCredentials => &CLIENT_CREDENTIALS,
            Method::Jwt => &JWT,
            Method::Password => &PASSWORD,
            Method::AccessToken => &ACCESS_TOKEN,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a form or a help text needs to know about one setting of an auth method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The setting's name in every source (`client_id`…).
    pub name: &'static str,
    /// What a form shows next to it.
    pub label: &'static str,
    /// Held sealed, written only, never shown.
    pub secret: bool,
    /// The method cannot work without it.
    pub required: bool,
    /// `text`, `password`, `textarea` or `url`: how a form asks for it.
    pub kind: &'static str,
    /// A line of help under the field; may be empty.
    pub hint: &'static str,
}

const fn info(
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    required: bool,
    hint: &'static str,
) -> FieldInfo {
    let secret = matches!(kind.as_bytes(), b"password" | b"textarea");
    FieldInfo { name, label, secret, required, kind, hint }
}

const CLIENT_ID: FieldInfo = info("client_id", "Consumer key (client id)", "text", true, "From the connected app.");

pub(super) fn parse_environment(value: &str) -> Result<Environment, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "production" | "prod" => Ok(Environment::Production),
        "sandbox" | "test" => Ok(Environment::Sandbox),
        "custom" | "mydomain" | "my-domain" => Ok(Environment::Custom),
        other => Err(ConfigError::new(format!(
            "unknown environment {other:?}; expected production, sandbox or custom (with login_url)"
        ))),
    }
}
