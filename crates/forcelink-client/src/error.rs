//! Errors as data. What Salesforce said is an [`ApiError`] (`errorCode`, `message`, `fields`,
//! plus the HTTP status); everything around it (unusable bodies, transport, auth, bad input) is
//! a [`ClientError`] variant, grouped by what the caller should do ([`ClientError::action`]).
//! Nothing here ever holds a token: excerpts of bodies are shortened and redacted
//! ([`forcelink_auth::body`]).

use std::fmt;

use forcelink_auth::{Action, AuthError};
use serde::{Deserialize, Serialize};

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
    /// `message`: Salesforce's explanation, for people.
    pub message: String,
    /// `fields`: the API names of the fields the error is about (often empty).
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

pub use forcelink_auth::body::{BodyKind, EXCERPT_CHARS};

/// Every error of forcelink-client.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Salesforce refused the request with its JSON error envelope. `others` holds further
    /// errors of the same answer (rare).
    #[error("{endpoint}: {error}")]
    Api {
        /// `METHOD scheme://host/path` of the request (no query string).
        endpoint: String,
        /// The first error of the answer.
        error: ApiError,
        /// Any further errors of the same answer.
        others: Vec<ApiError>,
    },
    /// The running user lacks rights an action needs (System Administrator / Manage Users).
    #[error("{action}: the running user lacks the rights this needs: {needs}. Salesforce said: {error}")]
    InsufficientRights {
        /// What was attempted (`create user`, `freeze user`…).
        action: &'static str,
        /// The rights it needs, in words.
        needs: &'static str,
        /// What Salesforce said (`INSUFFICIENT_ACCESS…`).
        error: ApiError,
    },
    /// An upsert's external id value matched several records (HTTP 300).
    #[error("{endpoint}: the external id matches {} records: {}", urls.len(), urls.join(", "))]
    MultipleMatches {
        /// `METHOD scheme://host/path` of the request.
        endpoint: String,
        /// The URLs of the matching records, as Salesforce listed them.
        urls: Vec<String>,
    },
    /// The answer was not what Salesforce answers (HTML, empty, truncated, wrong shape).
    #[error("{endpoint} answered HTTP {status} with {kind}: {excerpt}")]
    UnexpectedResponse {
        /// `METHOD scheme://host/path` of the request.
        endpoint: String,
        /// The HTTP status of the answer.
        status: u16,
        /// What the body looked like.
        kind: BodyKind,
        /// The start of the body, shortened and with session ids redacted.
        excerpt: String,
    },
    /// No answer (connection refused or reset, timeout).
    #[error("could not reach {endpoint}: {message}")]
    Transport {
        /// `METHOD scheme://host/path` of the request.
        endpoint: String,
        /// What the HTTP stack reported.
        message: String,
        /// Whether a timeout (rather than a refused or broken connection) ended it.
        timeout: bool,
    },
    /// Getting a token failed, or a URL may not receive one.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A value given to a builder is not valid (identifier, id, size); nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A server asked to wait longer than the retry policy allows.
    #[error("{endpoint} asked to retry after {seconds} s, more than the allowed {max_seconds} s")]
    RetryAfterTooLong {
        /// `METHOD scheme://host/path` of the request.
        endpoint: String,
        /// The wait the server asked for (`Retry-After`), in seconds.
        seconds: u64,
        /// The longest wait the retry policy allows, in seconds.
        max_seconds: u64,
    },
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

#[cfg(test)]
mod tests {
    use super::*;

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
