//! What every REST call carries from authentication to the record code: the API [`Version`] it
//! named (within the range the playground speaks) and the [`Caller`]. Bulk jobs keep both, as
//! they run after the request that created them.

/// The newest API version the playground speaks (Spring '26).
pub const LATEST_API_VERSION: &str = "66.0";
/// The oldest API version the playground speaks (Winter '11).
pub(crate) const OLDEST_API_VERSION: u32 = 20;

/// The API version of a request (`v58.0` → 58, "58.0").
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Version {
    pub(crate) major: u32,
    pub(crate) text: String,
}

impl Version {
    pub(crate) fn parse(segment: &str) -> Option<Self> {
        let rest = segment.strip_prefix('v')?;
        let (major, minor) = rest.split_once('.')?;
        let m: u32 = major.parse().ok()?;
        let latest: u32 = LATEST_API_VERSION.split('.').next().and_then(|v| v.parse().ok()).unwrap_or(m);
        if minor != "0" || !(OLDEST_API_VERSION..=latest).contains(&m) {
            return None;
        }
        Some(Self { major: m, text: format!("{m}.0") })
    }
}

/// Who is calling.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Caller {
    pub(crate) id: String,
    pub(crate) admin: bool,
}
