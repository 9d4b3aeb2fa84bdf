//! Inputs the fuzz targets in `fuzz/` found, kept as regression tests (issue 23).

use forcelink_client::fuzzing::{decode_page, decode_page_serde, decode_page_sonic};
use forcelink_client::{BodyKind, ClientError, RawResponse};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// `client_query_page`: serde_json skipped an unknown field without looking at its bytes, so
/// the fallback took a page the fast path refused. JSON is UTF-8 throughout: both refuse it.
#[test]
fn issue_23_invalid_utf8_in_an_unknown_field_is_refused_by_both_page_decoders() {
    let body: &[u8] = b"{\"totalSize\":1,\"done\":true,\"nextRecordsUrl\":\"/services/data/v64.0/\x86\x8a\",\"records\":[]}";
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
