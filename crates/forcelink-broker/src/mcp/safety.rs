//! What keeps an agent from seeing secrets or flooding an org: every result is redacted at the
//! boundary ([`redact`], [`scrub`]) and every key has a call budget ([`CallBudget`]).
//!
//! Redaction works on the JSON before it is written, so it sees field names: values of fields
//! named like tokens, secrets, passwords or session ids become `[redacted]`, and every string
//! passes through forcelink-auth's text redaction (session ids `00D…!…`, `Bearer …`, secrets in
//! embedded JSON or forms) and loses anything shaped like a broker API key. [`scrub`] then
//! removes the exact tokens the broker holds from the text sent, whatever field they hid in.
//!
//! The budget is a token bucket per API key on the broker's clock: `per_minute` calls at once,
//! refilled at `per_minute` a minute. It lives in this broker's memory, so each replica counts
//! on its own (an agent spread over N replicas gets at most N times the budget).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde_json::Value;

/// What a redacted value is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Field names (lowercase, without `_` and `-`) whose values are never shown.
/// (Not `signature`: `User.Signature` is an email signature, and a token response's signature
/// is no secret.)
const SECRET_FIELDS: [&str; 8] =
    ["sid", "sessionid", "assertion", "clientassertion", "authorization", "devicecode", "apikey", "key"];
/// Field name endings (same normalisation) whose values are never shown.
const SECRET_ENDINGS: [&str; 4] = ["token", "secret", "password", "sessionid"];

/// Whether values of the field `name` are secret. A custom field's suffix (`__c`, `__pc`…)
/// does not count: `Security_Token__c` is a token.
fn is_secret_field(name: &str) -> bool {
    let base = match name.rsplit_once("__") {
        Some((base, suffix)) if !base.is_empty() && (1..=3).contains(&suffix.len()) => base,
        _ => name,
    };
    let norm: String = base.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect();
    SECRET_FIELDS.contains(&norm.as_str()) || SECRET_ENDINGS.iter().any(|e| norm.ends_with(e))
}

/// Redacts `value` in place (see the module docs).
pub(crate) fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, v) in map.iter_mut() {
                if is_secret_field(name) && !v.is_null() {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(text) => {
            let cleaned = without_api_keys(&forcelink_auth::body::redact(text));
            if cleaned != *text {
                *text = cleaned;
            }
        }
        _ => {}
    }
}

/// `text` with every word shaped like a broker API key (`flk_<id>_<secret>`) replaced.
fn without_api_keys(text: &str) -> String {
    if !text.contains(forcelink_store::apikey::API_KEY_PREFIX) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if forcelink_store::apikey::parse(word).is_some() {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `text` with each of `secrets` (exact values, e.g. the access tokens the broker holds)
/// replaced; secrets shorter than 16 characters are not looked for (they would match words).
pub(crate) fn scrub(text: String, secrets: &[&str]) -> String {
    let mut text = text;
    for secret in secrets.iter().filter(|s| s.len() >= 16) {
        if text.contains(secret) {
            text = text.replace(secret, REDACTED);
        }
    }
    text
}

/// Calls a key may make per minute unless set. 60 (as Salesforce's own local MCP server).
pub const DEFAULT_MCP_CALLS_PER_MINUTE: u32 = 60;

/// Most keys whose buckets are kept; beyond it full buckets are forgotten first. 10 000.
const MAX_BUCKETS: usize = 10_000;

/// A key's bucket: calls left (fractional while refilling) and when it was last topped up.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    left: f64,
    at: SystemTime,
}

/// Per-key call budgets (cheap to clone; clones share the buckets).
#[derive(Debug, Clone)]
pub(crate) struct CallBudget {
    per_minute: u32,
    // API key id → its bucket.
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl CallBudget {
    /// Budgets of `per_minute` calls a minute (at least 1).
    pub(crate) fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1), buckets: Arc::default() }
    }

    /// The calls a key may make per minute.
    pub(crate) fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes one call from `key`'s budget at `now`; when none is left, how long until one is.
    pub(crate) fn take(&self, key: &str, now: SystemTime) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Forget the keys that have refilled (they lose nothing); if none has, all of them.
            buckets.retain(|_, b| now.duration_since(b.at).is_ok_and(|d| d.as_secs_f64() * per_second < capacity));
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { left: capacity, at: now });
        // A clock that went back refills nothing.
        let elapsed = now.duration_since(bucket.at).unwrap_or_default();
        bucket.left = (bucket.left + elapsed.as_secs_f64() * per_second).min(capacity);
        bucket.at = now.max(bucket.at);
        if bucket.left >= 1.0 {
            bucket.left -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.left) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_fields_and_secret_shaped_text_are_redacted_and_data_stays() {
        let key =
            forcelink_store::apikey::generate("x", vec![], forcelink_store::Scopes::All, SystemTime::UNIX_EPOCH).0;
        let session = "00D5g000004ABCD!AQ0AQFr7Xq1WnQk3.abcdefghijklmnopqrstuvwxyz0123456789";
        let mut v = json!({
            "access_token": "a", "refresh_token": "r", "client_secret": "s", "generated_password": "p",
            "NewPassword": "n", "sessionId": "x", "Security_Token__c": "t", "sid": "y",
            "Name": "Acme", "Count": 3, "Owner": {"Password__c": "z", "Title": "CEO"},
            "notes": [format!("session {session} here"), format!("key {} here", key.secret()), "Bearer abc.def"],
            "Description": "no secrets in here",
            "api_key_hint": null,
        });
        redact(&mut v);
        for field in
            ["access_token", "refresh_token", "client_secret", "generated_password", "NewPassword", "sessionId"]
        {
            assert_eq!(v[field], REDACTED, "{field}");
        }
        assert_eq!(v["Security_Token__c"], REDACTED);
        assert_eq!(v["sid"], REDACTED);
        assert_eq!(v["Owner"]["Password__c"], REDACTED);
        assert_eq!(
            (v["Name"].clone(), v["Count"].clone(), v["Owner"]["Title"].clone()),
            (json!("Acme"), json!(3), json!("CEO"))
        );
        assert_eq!(v["Description"], "no secrets in here");
        assert!(v["api_key_hint"].is_null(), "null stays null");
        let text = v.to_string();
        assert!(!text.contains(session) && !text.contains("AQ0AQFr7Xq1WnQk3"), "{text}");
        assert!(!text.contains(key.secret()), "{text}");
        assert!(!text.contains("abc.def"), "{text}");
        assert_eq!(v["notes"][1], format!("key {REDACTED} here"));
    }

    #[test]
    fn scrub_removes_exact_secrets_but_not_short_words() {
        let token = "00DXX0000000001!AQtokentokentoken";
        let text = format!("{{\"x\":\"{token}\",\"id\":\"short\"}}");
        assert_eq!(scrub(text, &[token, "short"]), format!("{{\"x\":\"{REDACTED}\",\"id\":\"short\"}}"));
    }

    #[test]
    fn budgets_allow_the_rate_per_key_and_refill_on_the_clock() {
        let budget = CallBudget::new(3);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for _ in 0..3 {
            budget.take("a", t0).unwrap();
        }
        let wait = budget.take("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20), "one call every 20 s at 3 a minute");
        budget.take("b", t0).expect("another key has its own budget");
        budget.take("a", t0 + Duration::from_secs(20)).expect("refilled one call");
        assert!(budget.take("a", t0 + Duration::from_secs(20)).is_err());
        // A full minute refills all, never more than the budget.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            budget.take("a", later).unwrap();
        }
        assert!(budget.take("a", later).is_err());
        // A clock going back grants nothing.
        assert!(budget.take("a", t0).is_err());
        assert_eq!(CallBudget::new(0).per_minute(), 1);
    }
}
