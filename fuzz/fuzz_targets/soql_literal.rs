//! The SOQL builder's literals read back through the playground's own SOQL parser: any string
//! placed in an `=` literal comes back as exactly that string (never more tokens, never another
//! value), a list keeps its values in order, and a LIKE pattern made to match a value exactly
//! has no wildcard left and unescapes to the value.
#![no_main]

use forcelink_client::soql::{Condition, Select};
use forcelink_playground::fuzzing::{Literal, soql_where_literals};
use libfuzzer_sys::fuzz_target;

/// A LIKE pattern's literal text, or `None` when it holds a wildcard (`%` or `_` unescaped).
fn like_literal(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '%' | '_' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fuzz_target!(|input: (String, String)| {
    let (value, other) = input;
    let q = Select::from("Account").filter(Condition::eq("Name", value.as_str())).build().expect("valid query");
    let literals = soql_where_literals(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(literals, [Literal::Str(value.clone())], "{q}");

    let q = Select::from("Account")
        .filter(Condition::is_in("Name", [value.as_str(), other.as_str()]).or(Condition::ne("Site", other.as_str())))
        .build()
        .expect("valid query");
    let literals = soql_where_literals(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let want = [Literal::Str(value.clone()), Literal::Str(other.clone()), Literal::Str(other.clone())];
    assert_eq!(literals, want, "{q}");

    let q = Select::from("Account").filter(Condition::like_exactly("Name", &value)).build().expect("valid query");
    let literals = soql_where_literals(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let [Literal::Str(pattern)] = literals.as_slice() else { panic!("{q}: {literals:?}") };
    assert_eq!(like_literal(pattern).as_deref(), Some(value.as_str()), "{q}");
});
