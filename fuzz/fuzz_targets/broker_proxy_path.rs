//! The proxy's path check on any request path. A path it accepts has no `.` or `..` segment
//! and no slash or backslash hidden in a segment after percent-decoding, and the URL the broker
//! builds from it stays under `/services/` of the instance once a URL parser has normalised it.
#![no_main]

use forcelink_broker::fuzzing::{audit_path, proxy_path_check};
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "/v1/connections/acme/sf/";

fuzz_target!(|text: &str| {
    let _ = proxy_path_check(text);
    // What the broker sees: the path of a request URI that HTTP accepted.
    let Ok(uri) = http::Uri::try_from(format!("{PREFIX}{text}")) else { return };
    let Some(rest) = uri.path().strip_prefix(PREFIX) else { return };
    let _ = audit_path(rest, uri.query());
    if proxy_path_check(rest).is_some() {
        return;
    }
    for segment in rest.split('/') {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        assert!(decoded != "." && decoded != "..", "accepted a dot segment: {rest:?}");
        assert!(!decoded.contains(['/', '\\']), "accepted a hidden separator: {rest:?}");
    }
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = url::Url::parse(&format!("https://acme.my.salesforce.com/{rest}{query}")).expect("a URL");
    assert_eq!(url.host_str(), Some("acme.my.salesforce.com"), "{rest:?}");
    assert!(url.path().starts_with("/services/"), "{rest:?} became {url}");
});
