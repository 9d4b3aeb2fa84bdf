//! Entry points for the fuzz targets in `fuzz/` and for property tests: thin wrappers over
//! the client's private decoders of what Salesforce (or anything answering in its place) sends:
//! query pages (the sonic-rs fast path and the serde_json decoder behind it), the next page's
//! URL, error bodies, and Bulk result CSV as it is streamed out. Built only with the `fuzzing`
//! feature; not part of the supported API.

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use crate::bulk::results::CsvSink;
use crate::error::ClientError;
use crate::query::{Page, RawPage};

/// What the fuzzed answers pretend to be.
const ENDPOINT: &str = "GET https://acme.my.salesforce.com/services/data/v66.0/query";

fn headers(content_type: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = content_type.and_then(|v| HeaderValue::from_str(v).ok()) {
        h.insert(CONTENT_TYPE, v);
    }
    h
}

/// A query page as the record stream decodes it (fast path first, then the regular decoder).
pub fn decode_page<T: DeserializeOwned>(content_type: Option<&str>, body: &[u8]) -> Result<Page<T>, ClientError> {
    let raw = RawPage {
        body: Bytes::copy_from_slice(body),
        endpoint: ENDPOINT.to_owned(),
        status: 200,
        headers: headers(content_type),
    };
    crate::query::decode_page(&raw)
}

/// The fast path alone: sonic-rs on the body.
pub fn decode_page_sonic<T: DeserializeOwned>(body: &[u8]) -> Option<Page<T>> {
    sonic_rs::from_slice(body).ok()
}

/// The regular decoder alone (serde_json, with unusable bodies typed).
pub fn decode_page_serde<T: DeserializeOwned>(content_type: Option<&str>, body: &[u8]) -> Result<Page<T>, ClientError> {
    crate::client::decode(ENDPOINT, 200, &headers(content_type), body)
}

/// The next page's URL as the producer finds it, and whether the client would follow it.
pub fn next_page_url(body: &[u8]) -> Option<Result<String, ClientError>> {
    crate::query::next_url(body).map(|u| crate::query::next_request(&u, &[]).map(|_| u))
}

/// An error answer (status ≥ 400) as the request path types it.
pub fn error_body(status: u16, content_type: Option<&str>, body: &[u8]) -> ClientError {
    crate::client::error_from(ENDPOINT, status, &headers(content_type), body)
}

/// Bulk result CSV arriving in `chunks` (one download, or several pages when `pages` is set:
/// each chunk list is one page, the header row of pages after the first dropped), as a result
/// download writes it out: the bytes written and the records counted.
pub fn result_csv(pages: &[Vec<&[u8]>]) -> Result<(Vec<u8>, u64), String> {
    let mut out: Vec<u8> = Vec::new();
    let run = async {
        let mut sink = CsvSink::new(&mut out, false);
        for (i, page) in pages.iter().enumerate() {
            if i > 0 {
                sink.skip_header_of_next();
            }
            for chunk in page {
                sink.write(chunk).await.map_err(|e| e.to_string())?;
            }
            sink.end_of_body().await.map_err(|e| e.to_string())?;
        }
        sink.finish().await.map_err(|e| e.to_string())
    };
    // Writing to a Vec never waits.
    let rows = futures_util::FutureExt::now_or_never(run).ok_or("writing the CSV waited")??;
    Ok((out, rows))
}
