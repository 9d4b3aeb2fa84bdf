//! Query pages as the record stream decodes them. The fast path (sonic-rs) and the regular
//! decoder (serde_json) agree on every body — both give the same page or both refuse it — for
//! records as JSON values and as a typed struct (sonic-rs may also take a page malformed only
//! where nobody reads: nested beyond serde_json's 128 levels, or in a field the typed record
//! lacks); the stream's decoder gives that page; and a next-page URL the client would follow
//! stays on `/services/data/`.
#![no_main]

use forcelink_client::fuzzing::{decode_page, decode_page_serde, decode_page_sonic, next_page_url};
use forcelink_client::query::Page;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, PartialEq, Deserialize)]
#[allow(non_snake_case, dead_code)]
struct Attributes {
    r#type: String,
    url: Option<String>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[allow(non_snake_case)]
struct Account {
    attributes: Option<Attributes>,
    Id: Option<String>,
    Name: Option<String>,
    AnnualRevenue: Option<f64>,
    NumberOfEmployees: Option<i64>,
    IsDeleted: Option<bool>,
    Owner: Option<Box<Account>>,
}

/// serde_json refuses JSON nested 128 levels deep or more, sonic-rs somewhat deeper.
fn too_deep_for_serde_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err_and(|e| e.to_string().contains("recursion limit"))
}

fn agree<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(body: &[u8], typed: bool) {
    let fast: Option<Page<T>> = decode_page_sonic(body);
    let slow = decode_page_serde::<T>(Some("application/json"), body).ok();
    match (&fast, &slow) {
        (Some(f), Some(s)) => assert_eq!(f, s, "sonic-rs and serde_json disagree"),
        (None, None) => {}
        // The fast path is more lenient in two ways, both in parts of the body nobody reads:
        // nesting beyond serde_json's limit, and fields a typed record does not have, which
        // sonic-rs skips without checking their escapes (the whole page as JSON values it refuses).
        (Some(_), None) if too_deep_for_serde_json(body) || (typed && decode_page_sonic::<Value>(body).is_none()) => {}
        _ => panic!(
            "only {} accepts the page: {:?}",
            if fast.is_some() { "sonic-rs" } else { "serde_json" },
            fast.as_ref().or(slow.as_ref())
        ),
    }
    let used = decode_page::<T>(Some("application/json"), body).ok();
    assert_eq!(used.as_ref(), fast.as_ref().or(slow.as_ref()), "the stream's decoder gives another page");
}

fuzz_target!(|body: &[u8]| {
    agree::<Value>(body, false);
    agree::<Account>(body, true);
    if let Some(Ok(url)) = next_page_url(body) {
        assert!(url.starts_with("/services/data/") && !url.contains(".."), "followed {url:?}");
    }
});
