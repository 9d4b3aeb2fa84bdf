//! What several fuzz targets share: one in-process playground org per fuzzing process, and the
//! checks properties are stated with.

use std::path::PathBuf;
use std::sync::OnceLock;

use forcelink_playground::fuzzing::Org;

/// Where the in-process org keeps its RSA keys: made once, reused by later runs.
pub fn key_dir() -> PathBuf {
    std::env::temp_dir().join("forcelink-fuzz-keys")
}

/// The org every target of this process talks to (the built-in seed, signed in as its
/// administrator).
pub fn org() -> &'static Org {
    static ORG: OnceLock<Org> = OnceLock::new();
    ORG.get_or_init(|| Org::new(&key_dir()).expect("the fuzzing org starts"))
}

/// The API version path prefix of the org's REST API.
pub const DATA: &str = "/services/data/v66.0";

/// Whether `text` holds something shaped like a Salesforce session id: `00D`, 12 to 15 letters
/// or digits, `!`.
pub fn contains_session_id(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len()).any(|i| {
        if !b[i..].starts_with(b"00D") {
            return false;
        }
        let run = b[i + 3..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        (12..=15).any(|n| n <= run && b.get(i + 3 + n) == Some(&b'!'))
    })
}

/// `text` percent-encoded for a query string value.
pub fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
