//! Unusable response bodies, the one place for all of forcelink: what a body that cannot be
//! used looked like ([`BodyKind`], [`classify`]), and a short excerpt of it for error messages
//! with every secret taken out ([`excerpt`], [`redact`]): Salesforce session ids, `Bearer`
//! values, and the values of token, secret and password fields in JSON and form text.

use std::fmt;

/// Longest excerpt of an unusable body kept in an error, in characters. 300.
pub const EXCERPT_CHARS: usize = 300;

/// Keys whose values are secrets wherever they appear in a body: OAuth tokens and client
/// credentials (token endpoints), the JWT assertion and the device code (their requests,
/// echoed in some errors), and passwords (user administration's `NewPassword`).
const SECRET_KEYS: [&str; 9] = [
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "device_code",
    "signature",
    "assertion",
    "password",
    "NewPassword",
];

/// What an unusable response body looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyKind {
    /// An HTML page (maintenance page, a wrong or dead host, a proxy).
    Html,
    /// Nothing, or only white space.
    Empty,
    /// Not valid JSON (truncated or garbled).
    Malformed,
    /// Valid JSON, but a required field is missing or has the wrong type.
    MissingField(&'static str),
    /// Valid JSON of the wrong shape for what was asked; the text says what did not fit.
    Shape(String),
    /// Larger than the reader's limit; not read.
    TooLarge,
}

impl fmt::Display for BodyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyKind::Html => f.write_str("an HTML page instead of JSON (maintenance page, wrong URL or a proxy)"),
            BodyKind::Empty => f.write_str("an empty body"),
            BodyKind::Malformed => f.write_str("a malformed or truncated JSON body"),
            BodyKind::MissingField(name) => write!(f, "JSON without a usable `{name}` field"),
            BodyKind::Shape(why) => write!(f, "JSON of an unexpected shape ({why})"),
            BodyKind::TooLarge => f.write_str("a body larger than the limit"),
        }
    }
}

/// True when the `Content-Type` says HTML, or the body starts like markup (proxies and
/// maintenance pages do not always label their pages).
pub fn looks_like_html(content_type: Option<&str>, body: &[u8]) -> bool {
    content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("html")) || body.trim_ascii_start().starts_with(b"<")
}

/// What is wrong with a body expected to be JSON before it is parsed: an HTML page or nothing.
/// `None` when it is worth parsing.
pub fn classify(content_type: Option<&str>, body: &[u8]) -> Option<BodyKind> {
    if looks_like_html(content_type, body) {
        Some(BodyKind::Html)
    } else if body.trim_ascii().is_empty() {
        Some(BodyKind::Empty)
    } else {
        None
    }
}

/// The first [`EXCERPT_CHARS`] characters of a body, redacted ([`redact`]), with `…` when cut.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let short: String = text.chars().take(EXCERPT_CHARS).collect();
    let mut out = redact(&short);
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// Replaces Salesforce session ids (`00D…!…`), `Bearer …` values and the values of secret
/// fields in JSON (`"key": "value"`) and form (`key=value`) text with `[redacted]`, also a value
/// cut off by truncation.
pub fn redact(text: &str) -> String {
    let mut out = redact_session_ids(text);
    out = redact_after(&out, "Bearer ");
    for key in SECRET_KEYS {
        out = redact_json_key(&out, key);
        out = redact_form_key(&out, key);
    }
    out
}

/// Replaces the string value of every `"key": "value"` in JSON text with `"[redacted]"`, also a
/// value cut off by truncation.
pub fn redact_json_key(text: &str, key: &str) -> String {
    let needle = format!("\"{key}\"");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(&needle) {
        let after_key = pos + needle.len();
        out.push_str(&rest[..after_key]);
        let tail = &rest[after_key..];
        let colon = tail.len() - tail.trim_start().len();
        let t = tail.trim_start();
        if let Some(t2) = t.strip_prefix(':') {
            let ws = t2.len() - t2.trim_start().len();
            let v = t2.trim_start();
            if let Some(inner) = v.strip_prefix('"') {
                out.push_str(&tail[..colon + 1 + ws]);
                out.push_str("\"[redacted]\"");
                let mut end = inner.len();
                let mut escaped = false;
                for (i, c) in inner.char_indices() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = i + 1;
                        break;
                    }
                }
                rest = &inner[end.min(inner.len())..];
                continue;
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn redact_form_key(text: &str, key: &str) -> String {
    let needle = format!("{key}=");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(&needle) {
        let boundary_ok = pos == 0 || matches!(rest.as_bytes()[pos - 1], b'&' | b'?' | b'#' | b' ' | b'\n');
        out.push_str(&rest[..pos + needle.len()]);
        rest = &rest[pos + needle.len()..];
        if boundary_ok {
            out.push_str("[redacted]");
            let end = rest.find(['&', ' ', '"', '\n']).unwrap_or(rest.len());
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
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
    fn redacts_json_and_form_and_truncated_values() {
        let t = redact(r#"{"access_token":"00D!abc","x":1,"refresh_token" : "5Aep\"q","signature":"sig"#);
        assert!(!t.contains("00D!abc") && !t.contains("5Aep") && !t.contains("sig\""), "{t}");
        assert!(t.contains("\"x\":1"), "{t}");
        let f = redact("#access_token=00D!abc&instance_url=https://x&refresh_token=5Aep");
        assert!(!f.contains("00D!abc") && !f.contains("5Aep"), "{f}");
        assert!(f.contains("instance_url=https://x"), "{f}");
    }

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
    fn html_and_empty_bodies_are_classified_before_parsing() {
        assert_eq!(classify(Some("text/html; charset=UTF-8"), b"{}"), Some(BodyKind::Html));
        assert_eq!(classify(None, b"  <html>"), Some(BodyKind::Html));
        assert_eq!(classify(Some("application/json"), b" \n"), Some(BodyKind::Empty));
        assert_eq!(classify(Some("application/json"), br#"{"a":1}"#), None);
    }
}
