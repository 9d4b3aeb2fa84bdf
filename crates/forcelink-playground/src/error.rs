//! Errors of starting and configuring the playground (not the OAuth errors it serves: those are
//! data, see `oauth::OAuthError`).

/// Why the playground could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlaygroundError {
    /// The seed file is unreadable or invalid. Fix the file; the message names the entry.
    #[error("invalid playground seed: {message}")]
    Seed {
        /// What is wrong, naming the entry.
        message: String,
    },
    /// A port could not be bound. Choose another port, or 0 for any free one.
    #[error("cannot listen on {addr}: {source} (choose another port, or 0 for any free one)")]
    Bind {
        /// The address that could not be bound.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Key or certificate material could not be created, read or written.
    #[error("playground keys: {message}")]
    Keys {
        /// What failed.
        message: String,
    },
    /// The data file could not be opened, or the generator could not run.
    #[error("playground data: {message}")]
    Data {
        /// What failed.
        message: String,
    },
    /// The info file could not be written.
    #[error("cannot write info file {path}: {source}")]
    InfoFile {
        /// The info file's path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl PlaygroundError {
    pub(crate) fn keys(message: impl std::fmt::Display) -> Self {
        Self::Keys { message: message.to_string() }
    }
}
