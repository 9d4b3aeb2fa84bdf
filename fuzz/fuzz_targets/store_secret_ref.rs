//! Secret references in their text form (`env:NAME`, `file:PATH`, or the value): what the store
//! writes back reads as the same reference, and a value never shows in what may be shown
//! (`display`, `Debug`).
#![no_main]

use forcelink_store::SecretRef;
use forcelink_store::fuzzing::secret_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let (secret, written) = secret_round_trip(text);
    assert_eq!(SecretRef::parse(&written), secret, "{text:?} written as {written:?}");
    if secret.is_value() {
        assert_eq!(secret.display(), "[stored]");
        assert_eq!(format!("{secret:?}"), "[stored]");
    }
});
