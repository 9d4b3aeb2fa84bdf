//! Request bodies the playground reads as a server: OAuth parameters (query string, form or
//! multipart body, HTTP Basic client credentials) and ContentVersion uploads (JSON or multipart
//! with an `entity_content` part). Any bytes are refused with an OAuth or REST error or read;
//! nothing panics and no upload makes the org fail (5xx).
#![no_main]

use forcelink_fuzz::{DATA, org};
use forcelink_playground::fuzzing::oauth_params;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    content_type: u8,
    boundary: String,
    authorization: Option<String>,
    query: Option<String>,
    body: Vec<u8>,
    upload: bool,
}

fuzz_target!(|input: Input| {
    let content_type = match input.content_type % 5 {
        0 => None,
        1 => Some("application/x-www-form-urlencoded".to_owned()),
        2 => Some(format!("multipart/form-data; boundary={}", input.boundary)),
        3 => Some("application/json".to_owned()),
        _ => Some(input.boundary.clone()),
    };
    let _ = oauth_params(content_type.as_deref(), input.authorization.as_deref(), input.query.as_deref(), &input.body);
    if input.upload {
        let answer =
            org().request("POST", &format!("{DATA}/sobjects/ContentVersion"), content_type.as_deref(), &input.body);
        assert!(answer.status < 500, "{} {}", answer.status, String::from_utf8_lossy(&answer.body));
    }
});
