//! Entry points for the fuzz targets in `fuzz/`: a thin wrapper over token-response decoding,
//! which reads what an authorization server (or anything answering in its place) sent. Built
//! only with the `fuzzing` feature; not part of the supported API.

use std::sync::Arc;

use url::Url;

use crate::clock::SystemClock;
use crate::endpoint::UrlPolicy;
use crate::error::AuthError;
use crate::secret::ClientSecret;
use crate::token::TokenSet;
use crate::wire::{Decode, RawResponse, Transport};

/// Where the fuzzed answers pretend to come from.
pub const TOKEN_ENDPOINT: &str = "https://acme.my.salesforce.com/services/oauth2/token";

/// Decodes a token endpoint's answer as every flow does: classified (HTML, empty, malformed),
/// OAuth errors in JSON or form encoding, the token set checked (signature when `secret` is
/// given, instance URL under the default URL policy, times).
pub fn token_response(
    transport: &Transport,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    secret: Option<&str>,
) -> Result<TokenSet, AuthError> {
    let endpoint = Url::parse(TOKEN_ENDPOINT).map_err(|e| AuthError::Config(e.to_string()))?;
    let raw = RawResponse {
        endpoint: crate::wire::endpoint_label(&endpoint),
        status,
        content_type: content_type.map(str::to_owned),
        body: body.to_vec(),
    };
    let secret = secret.map(ClientSecret::new);
    let how = Decode { secret: secret.as_ref(), fallback_instance: &endpoint, issuer: &endpoint };
    transport.token_set(&raw, how)
}

/// A transport under the default URL policy (https Salesforce hosts only). Token decoding
/// never sends anything with it.
pub fn transport() -> Result<Transport, AuthError> {
    let http = crate::wire::default_http_client()?;
    Ok(Transport::new(http, Arc::new(SystemClock), UrlPolicy::new()))
}
