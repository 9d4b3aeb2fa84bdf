//! The in-place writer against the `serde_json::Value` writer it replaced: the same bytes on
//! stdout and the same warning, for every format, on records with relationship fields, child
//! relationships, nulls, escapes, unicode, numbers of every kind and fields that appear late.

mod reference;

use forcelink_client::Page;
use serde_json::Value;

use super::Job;
use super::node::Node;
use super::writer::{Format, RecordWriter};
use reference::OldWriter;

/// Three pages (200 + 200 + 50 records) in Salesforce's shape, with the odd inputs a page may
/// hold: escapes (`\u00e9`, `\/`, surrogate pairs, control characters), numbers in every
/// spelling, a repeated key, a field first seen after the table's preview, blanks between tokens.
fn pages() -> Vec<String> {
    let numbers = [
        "0",
        "-0",
        "-5",
        "1.5",
        "1e3",
        "1.0E+2",
        "12345678901234567890",
        "-9223372036854775808",
        "0.1",
        "1.7976931348623157e308",
        "5e-324",
        "-0.0",
        "100.00",
        "2.5e-3",
        "18446744073709551615",
    ];
    let names = [
        r#""Acme""#,
        r#""Caf\u00e9 \u65e5\u672c""#,
        r#""日本語 😀""#,
        r#""\ud83d\ude00 pair""#,
        r#""a\/b""#,
        r#""say \"hi\", then, go""#,
        r#""two\nlines\tand\rmore""#,
        r#"" leading space""#,
        r#""""#,
        r#""ctrl\u0001char""#,
        r#""a very long name that is wider than the forty characters a column allows""#,
        r#""back\\slash""#,
    ];
    let mut pages = Vec::new();
    let mut n = 0usize;
    for (p, size) in [200usize, 200, 50].into_iter().enumerate() {
        let mut records = Vec::new();
        for _ in 0..size {
            let name = names[n % names.len()];
            let number = numbers[n % numbers.len()];
            let account = match n % 4 {
                0 => "null".to_owned(),
                1 => format!(
                    r#"{{"attributes":{{"type":"Account","url":"/services/data/v64.0/sobjects/Account/001x{n}"}},"Name":{name},"Owner":{{"attributes":{{"type":"User"}},"Name":"Ada","Alias":null}}}}"#
                ),
                2 => r#"{"attributes":{"type":"Account"},"Name":null,"Owner":null}"#.to_owned(),
                _ => format!(
                    r#"{{ "attributes" : {{ "type" : "Account" }} , "Name" : {name} , "Owner" : {{ "Name" : "B\u00f6b" }} }}"#
                ),
            };
            let children = match n % 3 {
                0 => "null".to_owned(),
                1 => format!(
                    r#"{{"totalSize":2,"done":true,"records":[{{"attributes":{{"type":"Case"}},"Subject":{name}}},{{"attributes":{{"type":"Case"}},"Subject":null}}]}}"#
                ),
                _ => r#"{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Case"},"Subject":"one"}]}"#
                    .to_owned(),
            };
            let late = if n >= 230 && n.is_multiple_of(7) {
                format!(r#","Late__c":{number},"Tags":[1,"x",null,{{"k":true}}]"#)
            } else {
                String::new()
            };
            let repeated = if n.is_multiple_of(11) {
                r#","Dup":1,"Other":false,"Dup":"second""#
            } else {
                r#","Dup":0,"Other":true"#
            };
            records.push(format!(
                r#"{{"attributes":{{"type":"Contact","url":"/services/data/v64.0/sobjects/Contact/003x{n}"}},"Id":"003x{n}","Name":{name},"Amount__c":{number},"Active__c":{active},"Account":{account},"Cases":{children}{repeated}{late}}}"#,
                active = if n.is_multiple_of(2) { "true" } else { "false" },
            ));
            n += 1;
        }
        let done = p == 2;
        let next = if done {
            String::new()
        } else {
            format!(r#","nextRecordsUrl":"/services/data/v64.0/query/01gx-{}""#, (p + 1) * 200)
        };
        pages.push(format!(r#"{{"totalSize":450,"done":{done}{next},"records":[{}]}}"#, records.join(",")));
    }
    pages
}

/// The old `query` loop: records up to the limit, then `finish`.
fn old_output(pages: &[Page<Value>], format: Format, envelope: bool, limit: u64) -> (String, Vec<String>) {
    let mut w = OldWriter::new(format, envelope);
    let mut count = 0;
    'pages: for page in pages {
        for r in &page.records {
            if count >= limit {
                break 'pages;
            }
            count += 1;
            w.write(r.clone()).expect("write");
        }
    }
    w.finish(count, pages.first().map(|p| p.total_size), None).expect("finish");
    (String::from_utf8(std::mem::take(&mut w.out)).expect("UTF-8"), w.dropped.clone())
}

fn new_output(pages: &[Page<Node<'_>>], format: Format, envelope: bool, limit: u64) -> (String, Vec<String>) {
    let mut job = Job { writer: RecordWriter::new(format, envelope), limit };
    let mut count = 0;
    let mut out = Vec::new();
    for page in pages {
        if count >= limit {
            break;
        }
        count = job.write_page(page, count);
        out.extend(job.writer.take_output());
    }
    job.writer.finish(count, pages.first().map(|p| p.total_size), None);
    out.extend(job.writer.take_output());
    (String::from_utf8(out).expect("UTF-8"), job.writer.dropped().to_vec())
}

fn compare(old: &[Page<Value>], new: &[Page<Node<'_>>], how: &str) {
    for (format, envelope) in [
        (Format::Ndjson, false),
        (Format::Json, false),
        (Format::Json, true),
        (Format::Csv, false),
        (Format::Table, false),
    ] {
        for limit in [u64::MAX, 0, 1, 199, 200, 201, 450] {
            let want = old_output(old, format, envelope, limit);
            let got = new_output(new, format, envelope, limit);
            assert!(
                want == got,
                "{how}: {format:?} (envelope {envelope}, limit {limit}) differs\nold: {:?}\nnew: {:?}",
                &want.0[..want.0.len().min(3000)],
                &got.0[..got.0.len().min(3000)]
            );
        }
    }
}

#[test]
fn pages_read_in_place_write_the_same_bytes_as_values_in_every_format() {
    let texts = pages();
    // As forcelink-client parses pages (sonic-rs), and as its fallback does (serde_json).
    let old: Vec<Page<Value>> = texts.iter().map(|t| sonic_rs::from_str(t).expect("page")).collect();
    let new: Vec<Page<Node<'_>>> = texts.iter().map(|t| sonic_rs::from_str(t).expect("page")).collect();
    compare(&old, &new, "sonic-rs");
    let old: Vec<Page<Value>> = texts.iter().map(|t| serde_json::from_str(t).expect("page")).collect();
    let new: Vec<Page<Node<'_>>> = texts.iter().map(|t| serde_json::from_str(t).expect("page")).collect();
    compare(&old, &new, "serde_json");
    // The comparison saw what it is about: the late field was left out of the table with a
    // warning, and the odd inputs were there.
    let (table, dropped) = new_output(&new, Format::Table, false, u64::MAX);
    assert_eq!(dropped, ["Account", "Account.Owner", "Late__c", "Tags"]);
    assert!(table.contains("Café 日本") && table.contains("[2 records]") && table.contains("Account.Owner.Name"));
    let (ndjson, _) = new_output(&new, Format::Ndjson, false, u64::MAX);
    let first = ndjson.lines().next().unwrap_or_default();
    assert!(first.contains(r#""Dup":"second","Other":false"#), "{first}");
    assert!(ndjson.contains("1.7976931348623157e+308"), "{}", ndjson.lines().nth(9).unwrap_or_default());
}

#[test]
fn search_records_borrowed_from_values_write_as_before() {
    let texts = pages();
    let old: Vec<Page<Value>> = texts.iter().map(|t| serde_json::from_str(t).expect("page")).collect();
    let borrowed: Vec<Page<Node<'_>>> = old
        .iter()
        .map(|p| Page {
            total_size: p.total_size,
            done: p.done,
            next_records_url: p.next_records_url.clone(),
            records: p.records.iter().map(Node::from_value).collect(),
        })
        .collect();
    compare(&old, &borrowed, "from_value");
}
