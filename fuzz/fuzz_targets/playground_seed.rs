//! Seed TOML as `forcelink playground --seed` reads it: parsed strictly, validated, and turned
//! into what a playground builds at start (schema, the org's records, event schemas). Any text
//! is refused with a message or accepted; nothing panics.
#![no_main]

use forcelink_playground::fuzzing::load_seed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = load_seed(text);
});
