//! Errors as data: what the authorization server said ([`OAuthError`], classified into an
//! [`OAuthErrorKind`] with a fix), what went wrong around it ([`AuthError`]), and what the
//! caller should do about it ([`Action`]). Nothing here ever holds a secret.

use std::fmt;
use std::time::Duration;

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Transient: try again later (with backoff).
    Retry,
    /// A setting of the connection or the connected app is wrong: a person must change it.
    FixConfiguration,
    /// The grant is gone (expired, revoked, denied): sign in again.
    Reauthorize,
    /// Not expected from a correct client or server: report it.
    Report,
}

/// The `{"error", "error_description"}` body of an OAuth failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code, e.g. `invalid_grant`.
    pub error: String,
    /// The `error_description`, e.g. `expired access/refresh token`, when sent.
    pub description: Option<String>,
    /// HTTP status of the answer (0 when it came in a redirect).
    pub status: u16,
}

/// Known Salesforce OAuth failures (catalogue: Salesforce's OAuth error table and recorded
/// answers; see `shared/reference/salesforce-wire.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthErrorKind {
    /// `invalid_grant` "no client credentials user enabled": the app has no Run As user.
    NoClientCredentialsUser,
    /// `invalid_grant` "user hasn't approved this consumer": the user never approved the app.
    UserNotApproved,
    /// `invalid_app_access`: the app admits admin-approved users only, and this one is not.
    NotAdminApproved,
    /// `invalid_grant` about the audience, or `app_not_found`: the JWT `aud` is wrong.
    InvalidAudience,
    /// `invalid_grant` "invalid assertion" / "expired assertion": the JWT was rejected.
    InvalidAssertion,
    /// `invalid_grant` "authentication failure" (also IP restricted, inactive user): bad credentials.
    AuthenticationFailure,
    /// `invalid_grant` "expired access/refresh token" (or a bare `invalid_grant`): the grant is gone.
    ExpiredToken,
    /// `invalid_grant` about the authorization code: already used or too old.
    ExpiredAuthorizationCode,
    /// `invalid_grant` "token request is already being processed": another renewal is running.
    TokenRequestInProgress,
    /// `invalid_client_id`: the consumer key is unknown to this org.
    InvalidClientId,
    /// `invalid_client`: the consumer secret does not match the key.
    InvalidClientCredentials,
    /// `inactive_user`: the user is inactive or frozen.
    InactiveUser,
    /// `inactive_org`: the org is expired or locked.
    InactiveOrg,
    /// `invalid_grant` "not supported on this domain": send it to the My Domain URL.
    WrongDomain,
    /// `unsupported_grant_type` or `unauthorized_client`: the flow is not enabled on the app.
    UnsupportedGrantType,
    /// `redirect_uri_mismatch`: the redirect URI is not in the app's Callback URL list.
    RedirectUriMismatch,
    /// `invalid_request`: a malformed request, e.g. a PKCE verifier that does not match.
    InvalidRequest,
    /// `invalid_scope`: a scope the app does not allow.
    InvalidScope,
    /// `authorization_pending`: the device flow's user has not approved yet.
    AuthorizationPending,
    /// `slow_down`: the device flow polls too fast.
    SlowDown,
    /// `access_denied`: the user denied the app.
    AccessDenied,
    /// `expired_token` in the device flow: the device code expired.
    ExpiredDeviceCode,
    /// `rate_limit_exceeded`: too many logins for the user (3,600 an hour).
    RateLimited,
    /// Any other error code.
    Other,
}

impl OAuthError {
    /// An error from its `error` code, `error_description` and HTTP status (0 for a redirect).
    pub fn new(error: impl Into<String>, description: Option<String>, status: u16) -> Self {
        Self { error: error.into(), description, status }
    }

    /// Which known failure this is, from the code and the description's wording.
    pub fn kind(&self) -> OAuthErrorKind {
        use OAuthErrorKind as K;
        let d = self.description.as_deref().unwrap_or("").to_ascii_lowercase();
        match self.error.as_str() {
            "invalid_grant" if d.contains("no client credentials user enabled") => K::NoClientCredentialsUser,
            "invalid_grant" if d.contains("hasn't approved") || d.contains("has not approved") => K::UserNotApproved,
            "invalid_grant" if d.contains("audience") => K::InvalidAudience,
            "invalid_grant" if d.contains("invalid assertion") || d.contains("expired assertion") => {
                K::InvalidAssertion
            }
            "invalid_grant" if d.contains("authentication failure") => K::AuthenticationFailure,
            "invalid_grant" if d.contains("expired access/refresh token") => K::ExpiredToken,
            "invalid_grant" if d.contains("authorization code") => K::ExpiredAuthorizationCode,
            "invalid_grant" if d.contains("already being processed") => K::TokenRequestInProgress,
            "invalid_grant" if d.contains("not supported on this domain") => K::WrongDomain,
            "invalid_grant" if d.contains("ip restricted") || d.contains("inactive user") => K::AuthenticationFailure,
            "invalid_app_access" => K::NotAdminApproved,
            "app_not_found" => K::InvalidAudience,
            "invalid_client_id" => K::InvalidClientId,
            "invalid_client" => K::InvalidClientCredentials,
            "inactive_user" => K::InactiveUser,
            "inactive_org" => K::InactiveOrg,
            "unsupported_grant_type" => K::UnsupportedGrantType,
            "unauthorized_client" => K::UnsupportedGrantType,
            "redirect_uri_mismatch" => K::RedirectUriMismatch,
            "invalid_request" => K::InvalidRequest,
            "invalid_scope" => K::InvalidScope,
            "authorization_pending" => K::AuthorizationPending,
            "slow_down" => K::SlowDown,
            "access_denied" | "access-denied" => K::AccessDenied,
            "expired_token" => K::ExpiredDeviceCode,
            "rate_limit_exceeded" => K::RateLimited,
            // RFC 6749 servers (and refresh-token reuse elsewhere) say only `invalid_grant`.
            "invalid_grant" => K::ExpiredToken,
            _ => K::Other,
        }
    }

    /// What to change so it works next time.
    pub fn remediation(&self) -> &'static str {
        self.kind().remediation()
    }

    /// What the caller should do about it.
    pub fn action(&self) -> Action {
        self.kind().action()
    }
}

impl OAuthErrorKind {
    /// What to change so it works next time, in a sentence or two for a person.
    pub fn remediation(self) -> &'static str {
        use OAuthErrorKind as K;
        match self {
            K::NoClientCredentialsUser => {
                "Set a Run As user in the connected app's Client Credentials Flow policy (Setup > App Manager > \
                 the app > Manage > Edit Policies > Client Credentials Flow > Run As)."
            }
            K::UserNotApproved => {
                "Pre-authorize the user: set Permitted Users to \"Admin approved users are pre-authorized\" and add \
                 the user's profile or a permission set to the connected app, or approve the app once \
                 interactively as that user."
            }
            K::NotAdminApproved => {
                "The app only admits admin-approved users: add the user's profile or a permission set to the \
                 connected app (Manage > Profiles / Permission Sets)."
            }
            K::InvalidAudience => {
                "Set the JWT audience to the login URL (https://login.salesforce.com, or https://test.salesforce.com \
                 for sandboxes); orgs with External Client Apps may need the My Domain URL instead. The audience \
                 is a separate setting from the token endpoint, and a fallback list can try both."
            }
            K::InvalidAssertion => {
                "The JWT was rejected: check that the certificate uploaded to the connected app matches the \
                 private key, that the consumer key (iss) and username (sub) are right, and that this machine's \
                 clock is correct."
            }
            K::AuthenticationFailure => {
                "Check the username and password; append the user's security token to the password unless \
                 the caller's IP is trusted; check login IP ranges and login hours of the user's profile."
            }
            K::ExpiredToken => {
                "The refresh token is expired or revoked (refresh-token policy, a newer approval beyond the \
                 5-per-user limit, rotation reuse, or an admin revoked it): authorize the connection again."
            }
            K::ExpiredAuthorizationCode => {
                "The authorization code was already used or is too old: start the sign-in again."
            }
            K::TokenRequestInProgress => {
                "Another request is renewing this token right now: wait, read the stored token again and \
                 retry with backoff; never send a second refresh."
            }
            K::InvalidClientId => {
                "The consumer key is unknown to this org: copy it again from the connected app, and check the \
                 login URL points at the org (production vs sandbox) where the app lives. New apps can take \
                 up to 10 minutes to become usable."
            }
            K::InvalidClientCredentials => {
                "The consumer secret does not match the consumer key: copy the secret again from the \
                 connected app."
            }
            K::InactiveUser => "The user is inactive or frozen: an admin must activate or unfreeze the user.",
            K::InactiveOrg => "The org is inactive (expired trial or locked): sign in to another org.",
            K::WrongDomain => {
                "Send this request to the org's My Domain URL (https://MyDomain.my.salesforce.com), not \
                 login.salesforce.com or test.salesforce.com."
            }
            K::UnsupportedGrantType => {
                "Enable this OAuth flow on the connected app (e.g. \"Enable Client Credentials Flow\", \
                 \"Enable Device Flow\"), or choose a flow the app allows."
            }
            K::RedirectUriMismatch => {
                "Add the exact redirect URI (scheme, host, port and path) to the connected app's Callback URL list."
            }
            K::InvalidRequest => "The request was malformed (e.g. a PKCE verifier that does not match): start over.",
            K::InvalidScope => "Request only scopes the connected app's Selected OAuth Scopes allow.",
            K::AuthorizationPending => "The user has not finished approving the device yet: keep polling.",
            K::SlowDown => "Polling too fast: wait longer between polls.",
            K::AccessDenied => "The user denied access: ask them to approve the app.",
            K::ExpiredDeviceCode => "The device code expired before the user approved it: start the device flow again.",
            K::RateLimited => {
                "Too many logins (Salesforce allows 3,600 per user per hour): slow down and reuse tokens."
            }
            K::Other => "See the error description from the authorization server.",
        }
    }

    /// What the caller should do about it.
    pub fn action(self) -> Action {
        use OAuthErrorKind as K;
        match self {
            K::TokenRequestInProgress | K::AuthorizationPending | K::SlowDown | K::RateLimited => Action::Retry,
            K::ExpiredToken | K::ExpiredAuthorizationCode | K::AccessDenied | K::ExpiredDeviceCode => {
                Action::Reauthorize
            }
            K::InvalidRequest | K::Other => Action::Report,
            _ => Action::FixConfiguration,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {d}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

pub use crate::body::BodyKind;

/// Errors of the store port.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached or did not answer; worth retrying.
    #[error("token store unavailable: {0}")]
    Unavailable(String),
    /// The store holds data it cannot read back.
    #[error("token store data is corrupt: {0}")]
    Corrupt(String),
}

/// Every error of forcelink-auth.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The authorization server answered with an OAuth error.
    #[error("{endpoint} refused: {error}. Fix: {fix}", fix = error.remediation())]
    OAuth {
        /// The endpoint as `scheme://host[:port]/path`, or the step (e.g. "authorization callback").
        endpoint: String,
        /// What the server said.
        error: OAuthError,
    },
    /// An answer that is not the expected JSON (an HTML page, empty, too large…).
    #[error("{endpoint} answered HTTP {status} with {kind}: {excerpt}")]
    UnexpectedResponse {
        /// The endpoint as `scheme://host[:port]/path`.
        endpoint: String,
        /// HTTP status of the answer.
        status: u16,
        /// What was wrong with the body.
        kind: BodyKind,
        /// The start of the body, with session ids and secrets redacted.
        excerpt: String,
    },
    /// The request did not get an answer (DNS, TLS, connection, timeout).
    #[error("could not reach {endpoint}: {message}")]
    Transport {
        /// The endpoint as `scheme://host[:port]/path`.
        endpoint: String,
        /// The error and its sources, without any URL's query string.
        message: String,
        /// Whether the request timed out.
        timeout: bool,
    },
    /// A URL the [`UrlPolicy`](crate::UrlPolicy) refuses to send credentials to.
    #[error("refusing to send credentials to {what} {url}: {reason}")]
    InsecureUrl {
        /// The setting or endpoint the URL came from, e.g. "login URL".
        what: String,
        /// The refused URL's origin only (a path or query may carry tokens).
        url: String,
        /// Why it was refused, with the rule to follow.
        reason: String,
    },
    /// A setting is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The token response's `signature` (HMAC-SHA256 of `id` and `issued_at`) does not verify.
    #[error("the token response signature does not match (wrong client secret, or the response was altered)")]
    SignatureMismatch,
    /// The `state` of an authorization redirect is not the one sent.
    #[error("the state in the redirect does not match the request (possible forged callback); start again")]
    StateMismatch,
    /// A refresh was needed but no refresh token is stored.
    #[error("no refresh token is stored for this connection; authorize it again")]
    NoRefreshToken,
    /// A static access token was refused, and nothing can renew it.
    #[error("the access token was refused and a static token cannot be renewed; provide a new access token")]
    StaticTokenRejected,
    /// The device flow's code expired before the user approved it.
    #[error("the device code expired before the user approved it; start the device flow again")]
    DeviceCodeExpired,
    /// A token request took longer than the cache's load timeout (given).
    #[error("getting a token took longer than {0:?}")]
    LoadTimeout(Duration),
    /// Another process held the renewal lease longer than the cache's lease wait (given).
    #[error("another process holds the renewal lease and did not finish within {0:?}")]
    LeaseTimeout(Duration),
    /// Generating, reading or signing with a key failed.
    #[error("key: {0}")]
    Key(String),
    /// The token store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or an impossible state; report it.
    #[error("internal error: {0}")]
    Internal(String),
    /// A renewal failed in a way only a person can fix; it is not tried again until the
    /// backoff ends, so a retrying caller cannot hammer Salesforce (or lock a user out).
    #[error(
        "{last} (remembered: the next attempt is in {retry_in_secs} s; fixing the connection or signing in again ends the wait)"
    )]
    BackingOff {
        /// The failure being remembered.
        last: Box<AuthError>,
        /// Seconds until the next attempt.
        retry_in_secs: u64,
    },
}

impl AuthError {
    /// What the caller should do about it.
    pub fn action(&self) -> Action {
        match self {
            AuthError::OAuth { error, .. } => error.action(),
            AuthError::UnexpectedResponse { status, .. } if *status >= 500 || *status == 429 => Action::Retry,
            AuthError::UnexpectedResponse { kind: BodyKind::Html, .. } => Action::Retry,
            AuthError::UnexpectedResponse { .. } => Action::Report,
            AuthError::Transport { .. } | AuthError::LoadTimeout(_) | AuthError::LeaseTimeout(_) => Action::Retry,
            AuthError::Store(_) => Action::Retry,
            AuthError::InsecureUrl { .. } | AuthError::Config(_) | AuthError::Key(_) => Action::FixConfiguration,
            AuthError::SignatureMismatch => Action::FixConfiguration,
            AuthError::StateMismatch
            | AuthError::NoRefreshToken
            | AuthError::DeviceCodeExpired
            | AuthError::StaticTokenRejected => Action::Reauthorize,
            AuthError::Internal(_) => Action::Report,
            AuthError::BackingOff { last, .. } => last.action(),
        }
    }

    /// The error itself, behind a remembered failure.
    pub fn root(&self) -> &AuthError {
        match self {
            AuthError::BackingOff { last, .. } => last.root(),
            other => other,
        }
    }

    /// The OAuth error, when the server sent one.
    pub fn oauth(&self) -> Option<&OAuthError> {
        match self.root() {
            AuthError::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The kind of the OAuth error, when the server sent one.
    pub fn oauth_kind(&self) -> Option<OAuthErrorKind> {
        self.oauth().map(OAuthError::kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(code: &str, d: &str) -> OAuthError {
        OAuthError::new(code, Some(d.to_owned()), 400)
    }

    #[test]
    fn classifies_the_catalogue() {
        use OAuthErrorKind as K;
        let table = [
            ("invalid_grant", "no client credentials user enabled", K::NoClientCredentialsUser),
            ("invalid_grant", "user hasn't approved this consumer", K::UserNotApproved),
            ("invalid_grant", "audience is invalid", K::InvalidAudience),
            ("invalid_grant", "Audience validation failed", K::InvalidAudience),
            ("app_not_found", "app not found", K::InvalidAudience),
            ("invalid_grant", "invalid assertion", K::InvalidAssertion),
            ("invalid_grant", "authentication failure", K::AuthenticationFailure),
            ("invalid_grant", "expired access/refresh token", K::ExpiredToken),
            ("invalid_grant", "expired authorization code", K::ExpiredAuthorizationCode),
            ("invalid_grant", "Token request is already being processed", K::TokenRequestInProgress),
            ("invalid_grant", "request not supported on this domain", K::WrongDomain),
            ("invalid_client_id", "client identifier invalid", K::InvalidClientId),
            ("invalid_client", "invalid client credentials", K::InvalidClientCredentials),
            ("inactive_user", "user is inactive", K::InactiveUser),
            ("inactive_org", "org is inactive", K::InactiveOrg),
            ("unsupported_grant_type", "grant type not supported", K::UnsupportedGrantType),
            ("invalid_app_access", "user is not admin approved to access this app", K::NotAdminApproved),
        ];
        for (code, desc, kind) in table {
            let err = e(code, desc);
            assert_eq!(err.kind(), kind, "{code}: {desc}");
            assert!(!err.remediation().is_empty());
        }
        assert_eq!(e("invalid_grant", "Token request is already being processed").action(), Action::Retry);
        assert_eq!(e("invalid_grant", "expired access/refresh token").action(), Action::Reauthorize);
        assert_eq!(e("invalid_grant", "no client credentials user enabled").action(), Action::FixConfiguration);
    }

    #[test]
    fn display_carries_the_fix() {
        let err = AuthError::OAuth {
            endpoint: "https://acme.my.salesforce.com/services/oauth2/token".into(),
            error: e("invalid_grant", "no client credentials user enabled"),
        };
        assert!(err.to_string().contains("Run As"), "{err}");
    }
}
