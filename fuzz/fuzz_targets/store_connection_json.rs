//! Connection definitions in JSON, in both shapes the CLI takes (forcelink's field names, and
//! the workflow tools' `{Username, ClientId, PrivateKey, InstanceUrl}`), read and validated
//! without a panic, `Debug` showing secret values as `[stored]`; and the edit rule on generated
//! pairs of definitions: an edit that keeps a stored secret (leaves it out) never moves the
//! connection's endpoints (login, token and instance URL, audiences, client id, Pub/Sub).
#![no_main]

use forcelink_store::connection::SECRET_FIELDS;
use forcelink_store::{Connection, ConnectionSpec, SecretRef};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const URLS: [&str; 12] = [
    "https://acme.my.salesforce.com",
    "https://acme.my.salesforce.com/",
    "HTTPS://ACME.MY.SALESFORCE.COM",
    " https://acme.my.salesforce.com ",
    "https://acme.my.salesforce.com:443",
    "https://acme.my.salesforce.com/services",
    "https://login.salesforce.com",
    "https://test.salesforce.com",
    "https://evil.example",
    "https://acme.my.salesforce.com.evil.example",
    "https://acme.my.salesforce.com@evil.example",
    "http://127.0.0.1:9",
];
const PUBSUB: [&str; 4] = [
    "api.pubsub.salesforce.com:7443",
    "API.PUBSUB.SALESFORCE.COM:7443",
    " api.pubsub.salesforce.com:7443",
    "evil.example:443",
];
const SECRETS: [&str; 4] = ["s3cr3t-value-1", "s3cr3t-value-2", "env:FORCELINK_FUZZ", "file:/nonexistent"];
const CLIENT_IDS: [&str; 3] = ["3MVG9fuzz", " 3MVG9fuzz ", "3MVG9other"];
const METHODS: [&str; 6] = ["access-token", "client-credentials", "jwt", "web", "device", "password"];
const ENVIRONMENTS: [&str; 3] = ["production", "sandbox", "custom"];

/// A definition drawn from the values above (or free text): field → (choice, free text).
#[derive(Debug, Arbitrary)]
struct Generated(Vec<(u8, Option<(u8, String)>)>);

const FIELDS: [&str; 18] = [
    "environment",
    "method",
    "login_url",
    "token_url",
    "audience",
    "instance_url",
    "api_version",
    "session_timeout_minutes",
    "client_id",
    "client_secret",
    "username",
    "password",
    "security_token",
    "private_key",
    "access_token",
    "scope",
    "callback_url",
    "pubsub_endpoint",
];

impl Generated {
    fn spec(&self) -> Option<ConnectionSpec> {
        let mut m = Map::new();
        for (field, value) in &self.0 {
            let field = FIELDS[usize::from(*field) % FIELDS.len()];
            let Some((choice, free)) = value else {
                m.remove(field);
                continue;
            };
            let pick = |pool: &[&str]| {
                pool.get(usize::from(*choice) % (pool.len() + 1)).map_or(free.clone(), |s| (*s).to_owned())
            };
            let v = match field {
                "environment" => Value::from(pick(&ENVIRONMENTS)),
                "method" => Value::from(pick(&METHODS)),
                "login_url" | "token_url" | "audience" | "instance_url" => Value::from(pick(&URLS)),
                "pubsub_endpoint" => Value::from(pick(&PUBSUB)),
                "client_id" => Value::from(pick(&CLIENT_IDS)),
                "session_timeout_minutes" => Value::from(*choice),
                f if SECRET_FIELDS.contains(&f) => Value::from(pick(&SECRETS)),
                _ => Value::from(free.clone()),
            };
            m.insert(field.to_owned(), v);
        }
        serde_json::from_value(Value::Object(m)).ok()
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    json: String,
    stored: Generated,
    submitted: Generated,
}

/// Where a resolved connection sends secrets and tokens.
fn endpoints(c: &Connection) -> Vec<String> {
    let url = |u: &url::Url| u.as_str().trim_end_matches('/').to_owned();
    let mut out = vec![url(&c.login_url)];
    out.extend(c.token_url.as_ref().map(url));
    out.push(String::new());
    out.extend(c.instance_url.as_ref().map(url));
    out.push(String::new());
    out.extend(c.audiences().iter().map(|a| a.trim_end_matches('/').to_owned()));
    out.push(c.pubsub_endpoint_or_default().to_owned());
    out.push(c.auth.client_id().unwrap_or_default().to_owned());
    out
}

/// Reads a definition as `forcelink connection add --from-json` does.
fn read_definition(text: &str) -> Option<ConnectionSpec> {
    let value: Value = serde_json::from_str(text).ok()?;
    let workflow = value.as_object().is_some_and(|o| {
        o.keys().any(|k| matches!(k.as_str(), "ClientId" | "InstanceUrl" | "PrivateKey" | "Username"))
    });
    if workflow { ConnectionSpec::from_workflow_json(&value).ok() } else { serde_json::from_value(value).ok() }
}

/// `Debug` is the spec's JSON with every secret value replaced by `[stored]` (references shown):
/// nothing else changed, nothing left out.
fn check_debug(spec: &ConnectionSpec) {
    let shown: Value = serde_json::from_str(&format!("{spec:?}")).expect("Debug is JSON");
    let mut expected = serde_json::to_value(spec).expect("a spec is JSON");
    for field in SECRET_FIELDS {
        if let Some(Value::String(text)) = expected.get_mut(field) {
            let secret = SecretRef::parse(text);
            *text = if secret.is_value() { "[stored]".to_owned() } else { secret.display() };
        }
    }
    assert_eq!(shown, expected, "Debug shows more or less than the redacted spec");
}

fuzz_target!(|input: Input| {
    if let Some(spec) = read_definition(&input.json) {
        check_debug(&spec);
        let _ = spec.resolve("fuzz");
    }
    let (Some(stored), Some(submitted)) = (input.stored.spec(), input.submitted.spec()) else { return };
    check_debug(&stored);
    let Ok(before) = stored.resolve("fuzz") else { return };
    let Ok((edited, _changed)) = stored.apply_edit(submitted.clone()) else { return };
    let stored_json = serde_json::to_value(&stored).expect("JSON");
    let submitted_json = serde_json::to_value(&submitted).expect("JSON");
    let kept_secret = SECRET_FIELDS.iter().any(|f| stored_json.get(*f).is_some() && submitted_json.get(*f).is_none());
    if kept_secret && let Ok(after) = edited.resolve("fuzz") {
        assert_eq!(endpoints(&before), endpoints(&after), "an edit kept a secret and moved the connection");
    }
});
