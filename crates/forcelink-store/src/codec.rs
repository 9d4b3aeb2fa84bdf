//! A token set as stored: JSON (version 1) sealed with the master key, the connection name as
//! associated data; a connection spec likewise, with `connection-spec:NAME`. Nothing of either
//! is stored in the clear.

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::secret::{AccessToken, IdToken, RefreshToken};
use forcelink_auth::store::ConnectionId;
use forcelink_auth::token::{LifetimeSource, TokenSet};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::connection::ConnectionSpec;
use crate::crypto::{MasterKey, OpenSealedError};

#[derive(Serialize, Deserialize)]
struct SetV1 {
    access_token: String,
    instance_url: String,
    identity_url: Option<String>,
    issued_at_ms: u64,
    expires_at_ms: Option<u64>,
    lifetime_source: String,
    refresh_token: Option<String>,
    scope: Option<String>,
    token_type: String,
    id_token: Option<String>,
    api_instance_url: Option<String>,
    // Absent in sets sealed by older versions.
    #[serde(default)]
    issuer: Option<String>,
}

pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn from_millis(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn source_name(s: LifetimeSource) -> &'static str {
    match s {
        LifetimeSource::ExpiresIn => "expires_in",
        LifetimeSource::Introspection => "introspection",
        LifetimeSource::Configured => "configured",
        LifetimeSource::Default => "default",
        LifetimeSource::Static => "static",
        _ => "unknown",
    }
}

fn source_from(name: &str) -> LifetimeSource {
    match name {
        "expires_in" => LifetimeSource::ExpiresIn,
        "introspection" => LifetimeSource::Introspection,
        "configured" => LifetimeSource::Configured,
        "default" => LifetimeSource::Default,
        "static" => LifetimeSource::Static,
        _ => LifetimeSource::Unknown,
    }
}

/// Seals `set` for the row of `connection`: JSON (version 1), encrypted with `key`, the
/// connection name as associated data.
pub fn seal(key: &MasterKey, connection: &ConnectionId, set: &TokenSet) -> Vec<u8> {
    let v = SetV1 {
        access_token: set.access_token.secret().to_owned(),
        instance_url: set.instance_url.to_string(),
        identity_url: set.identity_url.as_ref().map(Url::to_string),
        issued_at_ms: millis(set.issued_at),
        expires_at_ms: set.expires_at.map(millis),
        lifetime_source: source_name(set.lifetime_source).to_owned(),
        refresh_token: set.refresh_token.as_ref().map(|t| t.secret().to_owned()),
        scope: set.scope.clone(),
        token_type: set.token_type.clone(),
        id_token: set.id_token.as_ref().map(|t| t.secret().to_owned()),
        api_instance_url: set.api_instance_url.clone(),
        issuer: set.issuer.as_ref().map(Url::to_string),
    };
    // Serialising plain strings and numbers cannot fail.
    let json = serde_json::to_vec(&v).unwrap_or_default();
    key.seal(&json, connection.as_str().as_bytes())
}

/// Opens a token set sealed by [`seal`] for the same connection; a value sealed with
/// another key is `StoreError::Unavailable`, a damaged or moved one `StoreError::Corrupt`.
pub fn open(key: &MasterKey, connection: &ConnectionId, sealed: &[u8]) -> Result<TokenSet, StoreError> {
    let json = key.open(sealed, connection.as_str().as_bytes()).map_err(|e| match e {
        OpenSealedError::WrongKey(_) => StoreError::Unavailable(format!("token set of {connection}: {e}")),
        OpenSealedError::Damaged => StoreError::Corrupt(format!("token set of {connection}: {e}")),
    })?;
    let v: SetV1 = serde_json::from_slice(&json)
        .map_err(|_| StoreError::Corrupt(format!("token set of {connection}: unreadable after decryption")))?;
    let url = |s: &str| Url::parse(s).map_err(|_| StoreError::Corrupt(format!("token set of {connection}: bad URL")));
    Ok(TokenSet {
        access_token: AccessToken::new(v.access_token),
        instance_url: url(&v.instance_url)?,
        identity_url: v.identity_url.as_deref().map(url).transpose()?,
        issued_at: from_millis(v.issued_at_ms),
        expires_at: v.expires_at_ms.map(from_millis),
        lifetime_source: source_from(&v.lifetime_source),
        refresh_token: v.refresh_token.map(RefreshToken::new),
        scope: v.scope,
        token_type: v.token_type,
        id_token: v.id_token.map(IdToken::new),
        api_instance_url: v.api_instance_url,
        issuer: v.issuer.as_deref().map(url).transpose()?,
    })
}

/// Associated data of a sealed connection spec: distinct from a token set's (the bare name), so
/// neither can be swapped for the other, and bound to the connection's name.
pub(crate) fn spec_aad(name: &ConnectionId) -> Vec<u8> {
    [b"connection-spec:".as_slice(), name.as_str().as_bytes()].concat()
}

/// The whole spec (secret values included) as JSON, sealed.
pub(crate) fn seal_spec(key: &MasterKey, name: &ConnectionId, spec: &ConnectionSpec) -> Vec<u8> {
    // A spec holds only strings, numbers and enums: serialising cannot fail.
    let json = serde_json::to_vec(spec).unwrap_or_default();
    key.seal(&json, &spec_aad(name))
}

/// Opens a spec sealed by [`seal_spec`] for the connection `name`.
pub(crate) fn open_spec(key: &MasterKey, name: &ConnectionId, sealed: &[u8]) -> Result<ConnectionSpec, StoreError> {
    let json = key.open(sealed, &spec_aad(name)).map_err(|e| match e {
        OpenSealedError::WrongKey(_) => StoreError::Unavailable(format!("connection {name}: {e}")),
        OpenSealedError::Damaged => StoreError::Corrupt(format!("connection {name}: {e}")),
    })?;
    // The serde error is not shown: it could quote a secret value.
    serde_json::from_slice(&json)
        .map_err(|_| StoreError::Corrupt(format!("connection {name}: unreadable after decryption")))
}

/// A token set sealed with `old`, sealed again with `new` (what a key rotation does per row).
pub(crate) fn reseal(
    old: &MasterKey,
    new: &MasterKey,
    connection: &ConnectionId,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    Ok(seal(new, connection, &open(old, connection, sealed)?))
}

/// A connection spec sealed with `old`, sealed again with `new`.
pub(crate) fn reseal_spec(
    old: &MasterKey,
    new: &MasterKey,
    name: &ConnectionId,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    Ok(seal_spec(new, name, &open_spec(old, name, sealed)?))
}
