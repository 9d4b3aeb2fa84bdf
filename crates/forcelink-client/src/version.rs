//! API versions: [`ApiVersion`] (`"66.0"`), the default the client starts with, and the
//! versions list (`GET /services/data/`) used to discover the newest one.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// The API version a client uses unless told otherwise or asked to discover the newest
/// (defined once, in forcelink-auth, for every forcelink crate).
pub use forcelink_auth::DEFAULT_API_VERSION;

/// A REST API version as Salesforce writes it in the versions list (`"58.0"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiVersion(String);

impl ApiVersion {
    /// Accepts `58.0`, `v58.0` and `58`; digits with at most one dot.
    pub fn new(text: &str) -> Result<Self, ClientError> {
        let t = text.trim().trim_start_matches('v');
        let ok = !t.is_empty()
            && t.split('.').count() <= 2
            && t.split('.').all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(ClientError::InvalidInput(format!("{text:?} is not an API version such as 64.0")));
        }
        Ok(Self(t.to_owned()))
    }
    /// The version without the `v` (`58.0`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The path segment, `v58.0`.
    pub fn segment(&self) -> String {
        format!("v{}", self.0)
    }
    /// Major number, for comparisons (`58.0` → 58).
    pub fn major(&self) -> u32 {
        self.0.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0)
    }
    fn key(&self) -> (u32, u32) {
        let mut it = self.0.split('.');
        let major = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        (major, minor)
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        Self(DEFAULT_API_VERSION.to_owned())
    }
}

impl PartialOrd for ApiVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ApiVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl TryFrom<String> for ApiVersion {
    type Error = ClientError;
    fn try_from(s: String) -> Result<Self, ClientError> {
        Self::new(&s)
    }
}
impl From<ApiVersion> for String {
    fn from(v: ApiVersion) -> String {
        v.0
    }
}
impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry of `GET /services/data/`: `{"label":"Winter '11","url":"/services/data/v20.0","version":"20.0"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// `version`: the number (`62.0`).
    pub version: String,
    /// `label`: the release name (`Winter '25`).
    pub label: String,
    /// `url`: the version's resource path (`/services/data/v62.0`).
    pub url: String,
}

/// The newest parseable version of a list.
pub fn newest(list: &[VersionInfo]) -> Option<ApiVersion> {
    list.iter().filter_map(|v| ApiVersion::new(&v.version).ok()).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_order_and_reject_path_tricks() {
        assert_eq!(ApiVersion::new("v58.0").unwrap().segment(), "v58.0");
        assert!(ApiVersion::new("58.0").unwrap() < ApiVersion::new("100").unwrap());
        assert!(ApiVersion::new("9.0").unwrap() < ApiVersion::new("58.0").unwrap());
        for bad in ["", "58.0/../x", "abc", "58..0", "1.2.3"] {
            assert!(ApiVersion::new(bad).is_err(), "{bad}");
        }
    }
}
