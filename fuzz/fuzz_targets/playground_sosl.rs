//! The playground's SOSL parser on any text, and every search it accepts run against the org: a
//! search never makes the org fail (5xx) or panic.
#![no_main]

use forcelink_fuzz::{DATA, org, query_value};
use forcelink_playground::fuzzing::parse_sosl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if parse_sosl(text).is_err() {
        return;
    }
    let answer = org().request("GET", &format!("{DATA}/search?q={}", query_value(text)), None, b"");
    assert!(answer.status < 500, "{text:?}: {} {}", answer.status, String::from_utf8_lossy(&answer.body));
});
