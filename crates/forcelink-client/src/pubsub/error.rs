//! [`PubSubError`]: what went wrong with a Pub/Sub call, grouped by what the caller should do.

use forcelink_auth::{Action, AuthError};

use super::ReplayId;

/// A Pub/Sub API failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PubSubError {
    /// Salesforce could not read the replay id the subscription resumed from
    /// (`…fetch.replayid.corrupted`). Never handled silently: the caller decides whether to
    /// start again from EARLIEST, LATEST or a replay id it trusts.
    #[error("the replay id {replay_id} was refused as corrupted ({error_code}): {message}")]
    CorruptedReplayId {
        /// The replay id that was refused.
        replay_id: ReplayId,
        /// Salesforce's `error-code` in the status metadata.
        error_code: String,
        /// The gRPC status message.
        message: String,
    },
    /// The replay id is outside the retention window or not from this topic
    /// (`…fetch.replayid.validation.failed`); events after it may be lost. The caller decides.
    #[error("the replay id {replay_id} is no longer valid ({error_code}): {message}")]
    ReplayIdInvalid {
        /// The replay id that was refused.
        replay_id: ReplayId,
        /// Salesforce's `error-code` in the status metadata.
        error_code: String,
        /// The gRPC status message.
        message: String,
    },
    /// The token was refused again right after a renewal: sign in again.
    #[error("the Pub/Sub API refused the token even after a renewal ({error_code}): {message}")]
    Unauthorized {
        /// Salesforce's `error-code` in the status metadata.
        error_code: String,
        /// The gRPC status message.
        message: String,
    },
    /// Salesforce ended the call with a gRPC status that retrying will not fix.
    #[error("the Pub/Sub API answered {code} ({}): {message}", error_code.as_deref().unwrap_or("no error-code"))]
    Status {
        /// The gRPC status code (`PermissionDenied`, `InvalidArgument`…).
        code: String,
        /// Salesforce's `error-code` in the status metadata. when sent.
        error_code: Option<String>,
        /// The gRPC status message.
        message: String,
    },
    /// The stream kept failing: `attempts` resubscriptions in a row, the last failing with `last`.
    #[error("gave up after {attempts} failed resubscriptions in a row; last: {last}")]
    ResubscribeLimit {
        /// Failed resubscriptions in a row.
        attempts: u32,
        /// The last failure.
        last: Box<PubSubError>,
    },
    /// No answer (connection refused, reset, TLS), or a retryable status.
    #[error("could not reach the Pub/Sub API at {endpoint}: {message}")]
    Transport {
        /// The Pub/Sub API endpoint (`host:port`).
        endpoint: String,
        /// What the transport or status reported.
        message: String,
    },
    /// No event and no keep-alive for longer than the watchdog allows.
    #[error("the subscription was silent for more than {seconds} s (no event, no keep-alive)")]
    Silent {
        /// The watchdog's limit, in seconds.
        seconds: u64,
    },
    /// An event or schema could not be decoded; `schema_id` names the schema.
    #[error("cannot decode an event of schema {schema_id}: {message}")]
    Decode {
        /// The schema of the event.
        schema_id: String,
        /// What could not be decoded.
        message: String,
    },
    /// Getting a token failed, or the endpoint may not receive one.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Saving a checkpoint failed; the subscription stopped so no event is acknowledged unsaved.
    #[error("saving the checkpoint failed: {0}")]
    Checkpoint(String),
    /// A value given to the client is not valid; nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl PubSubError {
    /// What the caller should do about it.
    pub fn action(&self) -> Action {
        match self {
            PubSubError::CorruptedReplayId { .. } | PubSubError::ReplayIdInvalid { .. } => Action::FixConfiguration,
            PubSubError::Unauthorized { .. } => Action::Reauthorize,
            PubSubError::Status { .. } | PubSubError::InvalidInput(_) => Action::FixConfiguration,
            PubSubError::ResubscribeLimit { .. }
            | PubSubError::Transport { .. }
            | PubSubError::Silent { .. }
            | PubSubError::Checkpoint(_) => Action::Retry,
            PubSubError::Decode { .. } => Action::Report,
            PubSubError::Auth(e) => e.action(),
        }
    }

    /// The `error-code` trailer Salesforce sent, if any.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            PubSubError::CorruptedReplayId { error_code, .. }
            | PubSubError::ReplayIdInvalid { error_code, .. }
            | PubSubError::Unauthorized { error_code, .. } => Some(error_code),
            PubSubError::Status { error_code, .. } => error_code.as_deref(),
            PubSubError::ResubscribeLimit { last, .. } => last.error_code(),
            _ => None,
        }
    }
}

/// How a failed call is handled.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The token was refused: invalidate it and try once more with a fresh one.
    Auth(PubSubError),
    /// Worth another try after a pause (dropped stream, unavailable).
    Retry(PubSubError),
    /// The caller must decide (corrupted replay id, not found, invalid argument).
    Fatal(PubSubError),
}

/// Sorts a gRPC status by what to do; `replay_id` is where the stream was to start.
pub(crate) fn classify(status: &tonic::Status, endpoint: &str, replay_id: Option<&ReplayId>) -> Failure {
    use tonic::Code;
    let error_code = status.metadata().get("error-code").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let message = status.message().to_owned();
    let code_text = error_code.clone().unwrap_or_default();
    let replay = || replay_id.cloned().unwrap_or_else(|| ReplayId::from_bytes(Vec::new()));
    if code_text.ends_with("replayid.corrupted") {
        return Failure::Fatal(PubSubError::CorruptedReplayId { replay_id: replay(), error_code: code_text, message });
    }
    if code_text.ends_with("replayid.validation.failed") {
        return Failure::Fatal(PubSubError::ReplayIdInvalid { replay_id: replay(), error_code: code_text, message });
    }
    if status.code() == Code::Unauthenticated || code_text.contains(".auth.") {
        return Failure::Auth(PubSubError::Unauthorized { error_code: code_text, message });
    }
    if let Some(detail) = certificate_refused(status) {
        // Trying again cannot make a certificate trusted: say so now instead of after every
        // resubscription's backoff.
        return Failure::Fatal(PubSubError::Transport { endpoint: endpoint.to_owned(), message: detail });
    }
    match status.code() {
        Code::Unavailable
        | Code::Cancelled
        | Code::Unknown
        | Code::Internal
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::ResourceExhausted => {
            let detail = match &error_code {
                Some(c) => format!("{:?} ({c}): {message}", status.code()),
                None => format!("{:?}: {message}", status.code()),
            };
            Failure::Retry(PubSubError::Transport { endpoint: endpoint.to_owned(), message: detail })
        }
        other => Failure::Fatal(PubSubError::Status { code: format!("{other:?}"), error_code, message }),
    }
}

/// The TLS verdict when the connection failed because the endpoint's certificate was refused
/// (rustls: "invalid peer certificate: …"), from the status or the errors under it.
fn certificate_refused(status: &tonic::Status) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text.contains("invalid peer certificate")
        .then(|| format!("TLS: the endpoint's certificate is not trusted ({text})"))
}
