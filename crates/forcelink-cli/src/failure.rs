//! Every way a command fails, as one type: what happened, what to do, and the exit code.
//!
//! Exit codes (stable; documented in docs/cli.md):
//! - 0: success
//! - 1: the operation failed (network, Salesforce, store unavailable): retrying may help
//! - 2: usage or configuration error: a setting or argument must change
//! - 3: sign-in needed: the grant is gone or was never made; run `forcelink login`
//! - 4: not found (no such connection)

use forcelink_auth::error::StoreError;
use forcelink_auth::{Action, AuthError};
use forcelink_client::ClientError;
use forcelink_playground::PlaygroundError;
use forcelink_store::OpenError;
use forcelink_store::connection::{ConfigError, SourceError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Failed,
    Usage,
    Config,
    SignIn,
    NotFound,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Failed => 1,
            Kind::Usage | Kind::Config => 2,
            Kind::SignIn => 3,
            Kind::NotFound => 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), fix: None }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Kind::Failed, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::Config, message)
    }
    pub fn sign_in(message: impl Into<String>) -> Self {
        Self::new(Kind::SignIn, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn from_auth(e: AuthError) -> Self {
        let kind = match e.action() {
            Action::FixConfiguration => Kind::Config,
            Action::Reauthorize => Kind::SignIn,
            _ => Kind::Failed,
        };
        match &e {
            // The message names the fix already for OAuth errors; keep it apart for --json.
            AuthError::OAuth { endpoint, error } => {
                Failure::new(kind, format!("{endpoint} refused: {error}")).with_fix(error.remediation())
            }
            AuthError::NoRefreshToken => {
                Failure::new(kind, e.to_string()).with_fix("sign in with `forcelink login web|device CONNECTION`")
            }
            _ => Failure::new(kind, e.to_string()),
        }
    }

    /// A REST/Bulk failure: Salesforce's own code and message, the HTTP status, and the hint
    /// for well-known codes. A 404 (`NOT_FOUND`) is exit code 4.
    pub fn from_client(e: ClientError) -> Self {
        if let ClientError::Auth(a) = e {
            return Failure::from_auth(a);
        }
        let kind = match (e.status(), e.action()) {
            (Some(404), _) => Kind::NotFound,
            // The resource is in another state (a finished job cannot be aborted): nothing in the
            // command is wrong.
            (Some(409), _) => Kind::Failed,
            (Some(401), _) | (_, Action::Reauthorize) => Kind::SignIn,
            // A request Salesforce refuses as such (bad SOQL, unknown field, missing rights):
            // something must change before a retry can work.
            (_, Action::FixConfiguration) => match &e {
                ClientError::InsufficientRights { .. } => Kind::Config,
                _ => Kind::Usage,
            },
            _ => Kind::Failed,
        };
        let fix = e.api_error().and_then(|a| a.hint()).map(str::to_owned).or_else(|| match &e {
            ClientError::MultipleMatches { .. } => {
                Some("the external id is not unique: update one record by its id instead".to_owned())
            }
            ClientError::UnexpectedResponse { .. } | ClientError::Transport { .. } => {
                Some("check the instance URL and the network, then retry".to_owned())
            }
            _ => None,
        });
        let message = e.to_string();
        // The error's text may carry the hint already; say it once.
        let fix = fix.filter(|f| !message.contains(f.as_str()));
        let failure = Failure::new(kind, message);
        match fix {
            Some(f) => failure.with_fix(f),
            None => failure,
        }
    }

    pub fn from_store(e: StoreError) -> Self {
        Failure::failed(e.to_string())
    }

    pub fn from_open(e: OpenError) -> Self {
        match &e {
            OpenError::Key(_) => Failure::config(e.to_string()),
            _ => Failure::failed(e.to_string()),
        }
    }

    /// The playground could not start: a bad seed or data file is configuration (exit code 2),
    /// anything else (a port in use, keys, the info file) a failure.
    pub fn from_playground(e: PlaygroundError) -> Self {
        match &e {
            PlaygroundError::Seed { .. } | PlaygroundError::Data { .. } => Failure::config(e.to_string()),
            _ => Failure::failed(e.to_string()),
        }
    }

    pub fn from_config(e: ConfigError) -> Self {
        Failure::config(e.0)
    }

    pub fn from_source(e: SourceError) -> Self {
        match e {
            SourceError::Config(c) => Failure::from_config(c),
            SourceError::Auth(a) => Failure::from_auth(a),
            other => Failure::config(other.to_string()),
        }
    }
}

/// `?` turns each library error into a `Failure` the way its `from_…` constructor does.
macro_rules! failure_from {
    ($($error:ty => $constructor:ident),* $(,)?) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Self {
                Failure::$constructor(e)
            }
        }
    )*};
}

failure_from! {
    AuthError => from_auth,
    ClientError => from_client,
    StoreError => from_store,
    ConfigError => from_config,
    SourceError => from_source,
    PlaygroundError => from_playground,
}
