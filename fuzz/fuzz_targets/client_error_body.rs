//! Error answers (status 400 and up) as the request path types them: Salesforce's envelope
//! (`[{errorCode, message}]`, a lone object, OAuth style) becomes an API error, anything else an
//! unexpected response whose excerpt never shows a session id. The shared body helpers
//! (classify, excerpt, redact) never panic and never leave a session id in what they redact.
#![no_main]

use forcelink_auth::body::{classify, excerpt, redact};
use forcelink_client::ClientError;
use forcelink_client::fuzzing::error_body;
use forcelink_fuzz::contains_session_id;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    status: u16,
    html: bool,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let status = 400 + input.status % 200;
    let content_type = if input.html { "text/html" } else { "application/json" };
    let _ = classify(Some(content_type), &input.body);
    let shown = excerpt(&input.body);
    assert!(!contains_session_id(&shown), "excerpt shows a session id: {shown:?}");
    let text = String::from_utf8_lossy(&input.body);
    let redacted = redact(&text);
    assert!(!contains_session_id(&redacted), "redact left a session id: {redacted:?}");
    match error_body(status, Some(content_type), &input.body) {
        ClientError::Api { error, .. } => assert_eq!(error.status, status),
        ClientError::UnexpectedResponse { status: s, excerpt, .. } => {
            assert_eq!(s, status);
            assert!(!contains_session_id(&excerpt), "excerpt shows a session id: {excerpt:?}");
        }
        other => panic!("an error answer became {other:?}"),
    }
});
