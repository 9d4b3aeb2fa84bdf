//! Any string placed in a SOQL literal stays inside it: the built query is the fixed prefix, a
//! literal whose decoding is the input, and the fixed suffix.
#![no_main]

use forcelink_client::soql::{Condition, Select};
use libfuzzer_sys::fuzz_target;

fn decode(body: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut it = body.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '\'' => return Some((out, &body[i + 1..])),
            '\\' => out.push(match it.next()?.1 {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'b' => '\u{8}',
                'f' => '\u{c}',
                e @ ('\'' | '"' | '\\' | '%' | '_') => e,
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    None
}

fuzz_target!(|value: &str| {
    let q = Select::from("Account").filter(Condition::eq("Name", value)).build().expect("valid query");
    let prefix = "SELECT Id FROM Account WHERE Name = '";
    let rest = q.strip_prefix(prefix).expect("fixed prefix");
    let (decoded, tail) = decode(rest).expect("one terminated literal");
    assert_eq!(decoded, value);
    assert!(tail.is_empty(), "text after the literal: {tail:?}");
});
