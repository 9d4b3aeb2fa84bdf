//! [`SecretRef`] (a secret, or where to find it) and [`SecretResolver`] (reads `env:` and
//! `file:` references with the environment the binary passes in).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::ConfigError;

/// A secret, or where to find it. The text form is `env:NAME`, `file:PATH`, or the value itself.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// The secret itself (stored sealed, never shown).
    Value(String),
    /// `env:NAME`: the value of an environment variable.
    Env(String),
    /// `file:PATH`: the contents of a file (`~` is the home directory).
    File(PathBuf),
}

impl SecretRef {
    /// The text form: `env:NAME`, `file:PATH`, or else the value itself.
    pub fn parse(text: &str) -> SecretRef {
        if let Some(name) = text.strip_prefix("env:") {
            SecretRef::Env(name.trim().to_owned())
        } else if let Some(path) = text.strip_prefix("file:") {
            SecretRef::File(PathBuf::from(path.trim()))
        } else {
            SecretRef::Value(text.to_owned())
        }
    }

    /// The text form; a value is returned as is (callers store it sealed, never print it).
    pub(crate) fn to_text(&self) -> String {
        match self {
            SecretRef::Value(v) => v.clone(),
            SecretRef::Env(n) => format!("env:{n}"),
            SecretRef::File(p) => format!("file:{}", p.display()),
        }
    }

    /// What may be shown: the reference, or `[stored]` for a value.
    pub fn display(&self) -> String {
        match self {
            SecretRef::Value(_) => "[stored]".to_owned(),
            other => other.to_text(),
        }
    }

    /// Whether this holds the secret itself (rather than a reference).
    pub fn is_value(&self) -> bool {
        matches!(self, SecretRef::Value(_))
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// Reads `env:` and `file:` secrets. Libraries take no ambient environment: the binary passes
/// its environment in.
/// Looks up one environment variable.
pub(crate) type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

#[derive(Clone)]
/// Reads `env:` and `file:` secrets with the environment lookup the binary passes in
/// (libraries take no ambient environment).
pub struct SecretResolver {
    env: Arc<EnvLookup>,
}

impl fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretResolver")
    }
}

impl SecretResolver {
    /// A resolver reading environment variables through `env`.
    pub fn new(env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self { env: Arc::new(env) }
    }

    /// Resolves only values; `env:` references fail (for tests and sandboxes).
    pub fn without_env() -> Self {
        Self::new(|_| None)
    }

    /// `what` names the setting in errors, e.g. "client_secret of connection prod".
    pub fn resolve(&self, what: &str, secret: &SecretRef) -> Result<String, ConfigError> {
        match secret {
            SecretRef::Value(v) => Ok(v.clone()),
            SecretRef::Env(name) => (self.env)(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                ConfigError::new(format!("{what} refers to environment variable {name}, which is not set or empty"))
            }),
            SecretRef::File(path) => {
                let expanded = expand_home(path, &*self.env);
                let text = std::fs::read_to_string(&expanded).map_err(|e| {
                    ConfigError::new(format!("{what} refers to file {}, which cannot be read: {e}", expanded.display()))
                })?;
                // Files written by editors end with a newline; secrets never do (PEM keeps its own).
                Ok(if text.contains("-----BEGIN") { text } else { text.trim_end_matches(['\r', '\n']).to_owned() })
            }
        }
    }
}

fn expand_home(path: &std::path::Path, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match (path.strip_prefix("~"), env("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}
