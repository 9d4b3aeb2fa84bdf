//! Entry points for the fuzz targets in `fuzz/`: the proxy's path check and the connection body
//! of the API, which read what callers send. The other bodies are fuzzed through
//! [`crate::router`]. Built only with the `fuzzing` feature; not part of the supported API.

use forcelink_store::ConnectionSpec;

/// Why the proxy refuses `path` (the raw text after `/sf/`), or `None` when it forwards it.
pub fn proxy_path_check(path: &str) -> Option<&'static str> {
    crate::proxy::check_path(path)
}

/// The proxied path as the audit log records it (query values removed).
pub fn audit_path(path: &str, query: Option<&str>) -> String {
    crate::proxy::audit_path(path, query)
}

/// A connection definition from the API (`POST /v1/connections`, `PUT …/{name}`): the name and
/// the spec, or the message of the 400 answer.
pub fn connection_body(body: &[u8], name_in_path: Option<&str>) -> Result<(String, ConnectionSpec), String> {
    let body = bytes::Bytes::copy_from_slice(body);
    let value = crate::api::parse_json(&body).map_err(|e| e.message)?;
    crate::api::spec_from_json(value, name_in_path).map_err(|e| e.message)
}
