//! The playground's SOQL parser on any text, and every query it accepts run against the org
//! (compiled to SQLite and executed): a query never makes the org fail (5xx) or panic.
#![no_main]

use forcelink_fuzz::{DATA, org, query_value};
use forcelink_playground::fuzzing::parse_soql;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if parse_soql(text).is_err() {
        return;
    }
    for resource in ["query", "queryAll"] {
        let answer = org().request("GET", &format!("{DATA}/{resource}?q={}", query_value(text)), None, b"");
        assert!(answer.status < 500, "{text:?}: {} {}", answer.status, String::from_utf8_lossy(&answer.body));
    }
});
