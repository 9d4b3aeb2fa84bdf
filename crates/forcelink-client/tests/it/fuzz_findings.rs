//! Inputs the fuzz targets in `fuzz/` found, kept as regression tests (issue 23).

use forcelink_client::fuzzing::{decode_page, decode_page_serde, decode_page_sonic};
use forcelink_client::{BodyKind, ClientError, RawResponse};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// `client_query_page`: serde_json skipped an unknown field without looking at its bytes, so
/// the fallback took a page the fast path refused. JSON is UTF-8 throughout: both refuse it.
#[test]
fn issue_23_invalid_utf8_in_an_unknown_field_is_refused_by_both_page_decoders() {
    let body: &[u8] =
        b"{\"totalSize\":1,\"done\":true,\"nextRecordsUrl\":\"/services/data/v64.0/\x86\x8a\",\"records\":[]}";
    let other = b"{\"totalSize\":1,\"done\":true,\"unknown\":\"\xff\",\"records\":[]}";
    for body in [body, other.as_slice()] {
        assert!(decode_page_sonic::<Value>(body).is_none());
        let e = decode_page_serde::<Value>(Some("application/json"), body).unwrap_err();
        assert!(matches!(e, ClientError::UnexpectedResponse { kind: BodyKind::Malformed, .. }), "{e:?}");
        assert!(decode_page::<Value>(Some("application/json"), body).is_err());
        let raw = RawResponse {
            status: 200,
            headers: HeaderMap::new(),
            body: bytes::Bytes::copy_from_slice(body),
            endpoint: "GET https://acme.my.salesforce.com/services/data/v64.0/query".into(),
        };
        let e = raw.json::<Value>().unwrap_err();
        assert!(matches!(e, ClientError::UnexpectedResponse { kind: BodyKind::Malformed, .. }), "{e:?}");
    }
    // Valid UTF-8 anywhere still reads.
    let fine = "{\"totalSize\":1,\"done\":true,\"unknown\":\"é🚀\",\"records\":[{\"Name\":\"Ünïcödé\"}]}";
    let page = decode_page::<Value>(Some("application/json"), fine.as_bytes()).unwrap();
    assert_eq!(page.records[0]["Name"], "Ünïcödé");
}

/// `client_query_page`: sonic-rs skips the fields a typed record lacks without checking their
/// escapes, so the stream's fast path takes such a page (the fallback alone would refuse it).
/// What the record reads is right, and as JSON values, where every field is read, it is refused.
#[test]
fn issue_23_a_bad_escape_in_a_field_the_typed_record_lacks_is_skipped() {
    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[allow(non_snake_case)]
    struct Account {
        Name: String,
    }
    let body = b"{\"totalSize\":1,\"done\":true,\"records\":[{\"Name\":\"x\",\"Other\":\"\\u\x17d83d\"}]}";
    let page = decode_page::<Account>(Some("application/json"), body).unwrap();
    assert_eq!(page.records, [Account { Name: "x".into() }]);
    assert!(decode_page_serde::<Account>(Some("application/json"), body).is_err());
    assert!(decode_page::<Value>(Some("application/json"), body).is_err());
}
