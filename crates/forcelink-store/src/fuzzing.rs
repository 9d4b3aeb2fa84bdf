//! Entry points for the fuzz targets in `fuzz/`: secret references in their text form, as every
//! source (config file, environment, flags, the broker's API) gives them. Built only with the
//! `fuzzing` feature; not part of the supported API.

use crate::connection::SecretRef;

/// A secret reference read from `text`, and its text form as the store writes it back.
pub fn secret_round_trip(text: &str) -> (SecretRef, String) {
    let secret = SecretRef::parse(text);
    let written = secret.to_text();
    (secret, written)
}
