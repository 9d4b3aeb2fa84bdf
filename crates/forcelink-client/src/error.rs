//! Errors as data. What Salesforce said is an [`ApiError`] (`errorCode`, `message`, `fields`,
//! plus the HTTP status); everything around it (unusable bodies, transport, auth, bad input) is
//! a [`ClientError`] variant, grouped by what the caller should do ([`ClientError::action`]).
//! Nothing here ever holds a token: excerpts of bodies are shortened and redacted.

use std::fmt;

use forcelink_auth::{Action, AuthError};
use serde::{Deserialize, Serialize};

/// Longest excerpt of an unusable body kept in an error.
pub const EXCERPT_CHARS: usize = 300;

/// One element of Salesforce's REST error envelope, `[{"message","errorCode","fields"}]`
/// (wire reference §7), with the HTTP status it came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// HTTP status of the answer (for a per-record error inside a 200 answer: that status).
    #[serde(default)]
    pub status: u16,
    /// `errorCode` in REST answers, `statusCode` in per-record results.
    #[serde(rename = "errorCode", alias = "statusCode")]
    pub error_code: String,
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

impl ApiError {
    /// What to do about well-known codes, when there is something to say.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.error_code.as_str() {
            "INVALID_SESSION_ID" => "the session expired or was revoked; the connection must sign in again",
            "REQUEST_LIMIT_EXCEEDED" => {
                "the org's API request limit is used up; waiting does not help within the 24-hour window: \
                 stop and resume later, or ask for a higher limit"
            }
            "API_DISABLED_FOR_ORG" | "API_CURRENTLY_DISABLED" => {
                "the REST API is not enabled for this org or user: the user needs the \"API Enabled\" permission"
            }
            "INSUFFICIENT_ACCESS" | "INSUFFICIENT_ACCESS_OR_READONLY" | "INSUFFICIENT_PRIVILEGES" => {
                "the running user lacks a permission this needs (for user administration: the System \
                 Administrator profile, or \"Manage Users\" and \"View Setup and Configuration\")"
            }
            "INVALID_FIELD" => "a field name is wrong or not visible to the running user (field-level security)",
            "INVALID_TYPE" | "NOT_FOUND" => "the object, record or resource does not exist or is not visible",
            "MALFORMED_QUERY" => "the SOQL is not valid; build it with forcelink_client::soql to avoid quoting errors",
            "QUERY_TIMEOUT" => "the query took too long: add a selective filter (indexed field) or use Bulk API 2.0",
            "INVALID_QUERY_LOCATOR" => "the query cursor expired (about 15 minutes unused): run the query again",
            "UNABLE_TO_LOCK_ROW" => "another transaction holds the record; retry later",
            _ => return None,
        })
    }

    /// Whether Salesforce says "try again later" with this code.
    pub fn is_transient(&self) -> bool {
        matches!(self.error_code.as_str(), "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "QUERY_TIMEOUT")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}: {}", self.status, self.error_code, self.message)?;
        if !self.fields.is_empty() {
            write!(f, " (fields: {})", self.fields.join(", "))?;
        }
        if let Some(h) = self.hint() {
            write!(f, ". Hint: {h}")?;
        }
        Ok(())
    }
}

/// What an unusable response body looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyKind {
    /// An HTML page (maintenance page, a wrong or dead host, a proxy).
    Html,
    Empty,
    /// Not valid JSON (truncated or garbled).
    Malformed,
    /// Valid JSON of the wrong shape for what was asked; the text says what did not fit.
    Shape(String),
    TooLarge,
}

impl fmt::Display for BodyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyKind::Html => f.write_str("an HTML page instead of JSON (maintenance page, wrong URL or a proxy)"),
            BodyKind::Empty => f.write_str("an empty body"),
            BodyKind::Malformed => f.write_str("a malformed or truncated JSON body"),
            BodyKind::Shape(why) => write!(f, "JSON of an unexpected shape ({why})"),
            BodyKind::TooLarge => f.write_str("a body larger than the limit"),
        }
    }
}

/// Every error of forcelink-client.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Salesforce refused the request with its JSON error envelope. `others` holds further
    /// errors of the same answer (rare).
    #[error("{endpoint}: {error}")]
    Api { endpoint: String, error: ApiError, others: Vec<ApiError> },
    /// The running user lacks rights an action needs (System Administrator / Manage Users).
    #[error("{action}: the running user lacks the rights this needs: {needs}. Salesforce said: {error}")]
    InsufficientRights { action: &'static str, needs: &'static str, error: ApiError },
    /// An upsert's external id value matched several records (HTTP 300).
    #[error("{endpoint}: the external id matches {} records: {}", urls.len(), urls.join(", "))]
    MultipleMatches { endpoint: String, urls: Vec<String> },
    /// The answer was not what Salesforce answers (HTML, empty, truncated, wrong shape).
    #[error("{endpoint} answered HTTP {status} with {kind}: {excerpt}")]
    UnexpectedResponse { endpoint: String, status: u16, kind: BodyKind, excerpt: String },
    /// No answer (connection refused or reset, timeout).
    #[error("could not reach {endpoint}: {message}")]
    Transport { endpoint: String, message: String, timeout: bool },
    /// Getting a token failed, or a URL may not receive one.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A value given to a builder is not valid (identifier, id, size); nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A server asked to wait longer than the retry policy allows.
    #[error("{endpoint} asked to retry after {seconds} s, more than the allowed {max_seconds} s")]
    RetryAfterTooLong { endpoint: String, seconds: u64, max_seconds: u64 },
}

impl ClientError {
    /// What the caller should do about it.
    pub fn action(&self) -> Action {
        match self {
            ClientError::Api { error, .. } => match error.status {
                401 => Action::Reauthorize,
                _ if error.is_transient() => Action::Retry,
                429 | 500.. => Action::Retry,
                _ if error.error_code == "REQUEST_LIMIT_EXCEEDED" => Action::Retry,
                _ => Action::FixConfiguration,
            },
            ClientError::InsufficientRights { .. } => Action::FixConfiguration,
            ClientError::MultipleMatches { .. } | ClientError::InvalidInput(_) => Action::FixConfiguration,
            ClientError::UnexpectedResponse { status, kind, .. } => {
                if *status >= 500 || *status == 429 || *kind == BodyKind::Html { Action::Retry } else { Action::Report }
            }
            ClientError::Transport { .. } | ClientError::RetryAfterTooLong { .. } => Action::Retry,
            ClientError::Auth(e) => e.action(),
        }
    }

    /// The Salesforce error, when Salesforce sent one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api { error, .. } | ClientError::InsufficientRights { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The `errorCode`, when Salesforce sent one.
    pub fn error_code(&self) -> Option<&str> {
        self.api_error().map(|e| e.error_code.as_str())
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { error, .. } | ClientError::InsufficientRights { error, .. } => Some(error.status),
            ClientError::UnexpectedResponse { status, .. } => Some(*status),
            ClientError::MultipleMatches { .. } => Some(300),
            _ => None,
        }
    }
}

/// A shortened body with token-shaped values replaced, for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let short: String = text.chars().take(EXCERPT_CHARS).collect();
    let mut out = redact(&short);
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// Keys whose values are secrets wherever they appear in a body.
const SECRET_KEYS: [&str; 6] =
    ["access_token", "refresh_token", "id_token", "client_secret", "password", "NewPassword"];

/// Replaces Salesforce session ids (`00D…!…`), `Bearer …` values and the values of
/// [`SECRET_KEYS`] in JSON text, also when truncation cut them off.
pub(crate) fn redact(text: &str) -> String {
    let mut out = redact_session_ids(text);
    out = redact_after(&out, "Bearer ");
    for key in SECRET_KEYS {
        out = forcelink_auth::wire::redact_json_key(&out, key);
    }
    out
}

/// `00D` + 12 or 15 alphanumerics + `!` + the opaque rest: the shape of a Salesforce session
/// id (sfdx-core's `(00D\w{12,15})![.\w]*`).
fn redact_session_ids(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i + 3 <= b.len() {
        if &b[i..i + 3] == b"00D" {
            let mut j = i + 3;
            while j < b.len() && b[j].is_ascii_alphanumeric() && j - i < 18 {
                j += 1;
            }
            if j < b.len() && b[j] == b'!' && (12..=15).contains(&(j - i - 3)) {
                let mut k = j + 1;
                while k < b.len() && (b[k].is_ascii_alphanumeric() || matches!(b[k], b'.' | b'_' | b'-')) {
                    k += 1;
                }
                out.push_str(&text[copied..i]);
                out.push_str("[redacted]");
                copied = k;
                i = k;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn redact_after(text: &str, marker: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(marker) {
        out.push_str(&rest[..pos + marker.len()]);
        out.push_str("[redacted]");
        let tail = &rest[pos + marker.len()..];
        let end = tail.find(|c: char| c.is_whitespace() || c == '"' || c == ',').unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_hide_session_ids_bearer_values_and_passwords() {
        let body = br#"{"message":"bad 00D8d0000000001!AQ4AQ.x_y-z here","h":"Bearer abc.def","NewPassword":"s3cr3tpw","access_token":"00D!cut"#;
        let e = excerpt(body);
        assert!(
            !e.contains("AQ4AQ") && !e.contains("abc.def") && !e.contains("s3cr3tpw") && !e.contains("00D!cut"),
            "{e}"
        );
        assert!(e.contains("bad [redacted] here"), "{e}");
        let long = "x".repeat(EXCERPT_CHARS + 10);
        assert!(excerpt(long.as_bytes()).ends_with('…'));
    }

    #[test]
    fn api_errors_parse_both_envelopes_and_carry_hints() {
        let rest: ApiError =
            serde_json::from_str(r#"{"message":"m","errorCode":"INSUFFICIENT_ACCESS","fields":["A"]}"#).unwrap();
        assert_eq!(rest.error_code, "INSUFFICIENT_ACCESS");
        assert!(rest.to_string().contains("System Administrator"), "{rest}");
        let save: ApiError = serde_json::from_str(r#"{"statusCode":"DUPLICATES_DETECTED","message":"m"}"#).unwrap();
        assert_eq!(save.error_code, "DUPLICATES_DETECTED");
        assert!(save.fields.is_empty());
    }
}
