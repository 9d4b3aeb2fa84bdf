//! Round trips that need no fuzzer, as property tests: the SOQL builder's literals read back by
//! the playground's own SOQL parser; records written as CSV (as uploads write them) read back
//! through the result-download path however the bytes arrive; and query pages decoded into a
//! typed record and written back as the same JSON.

use forcelink_client::fuzzing::{decode_page, result_csv};
use forcelink_client::query::Page;
use forcelink_client::soql::{Condition, Literal, Select};
use forcelink_playground::fuzzing::{Literal as Parsed, soql_where_literals};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The literals of `Name = <literal>` as the playground parses the built query.
fn parsed(literal: Literal) -> Vec<Parsed> {
    let q = Select::from("Account").filter(Condition::eq("Name", literal)).build().expect("a valid query");
    soql_where_literals(&q).unwrap_or_else(|e| panic!("the playground refuses {q}: {e}"))
}

/// A number literal's value, the sign folded in.
fn number(parsed: &[Parsed]) -> f64 {
    let [Parsed::Num(n)] = parsed else { panic!("not one number: {parsed:?}") };
    n.parse().unwrap_or_else(|_| panic!("not a number: {n}"))
}

/// Date literals the playground knows (Salesforce has more; the builder accepts any name).
const DATE_FUNCTIONS: [&str; 12] = [
    "TODAY",
    "YESTERDAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_YEAR",
    "THIS_YEAR",
    "NEXT_YEAR",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn soql_text_literals_read_back_as_the_same_string(value in any::<String>(), other in any::<String>()) {
        prop_assert_eq!(parsed(Literal::Text(value.clone())), vec![Parsed::Str(value.clone())]);
        let q = Select::from("Account")
            .filter(Condition::not_in("Name", [value.as_str(), other.as_str()]))
            .build()
            .expect("a valid query");
        prop_assert_eq!(soql_where_literals(&q), Ok(vec![Parsed::Str(value), Parsed::Str(other)]));
    }

    #[test]
    fn soql_numbers_read_back_as_the_same_number(i in any::<i64>(), d in any::<f64>().prop_filter("finite", |d| d.is_finite())) {
        prop_assert_eq!(number(&parsed(Literal::Int(i))), i as f64);
        let written = parsed(Literal::Int(i));
        let [Parsed::Num(text)] = written.as_slice() else { panic!("not one number: {written:?}") };
        prop_assert_eq!(text.parse::<i64>().ok(), Some(i));
        prop_assert_eq!(number(&parsed(Literal::Decimal(d))), d);
    }

    #[test]
    fn soql_dates_and_constants_read_back_unchanged(
        y in 1000u32..10000, mo in 1u32..13, day in 1u32..29, h in 0u32..24, mi in 0u32..60, s in 0u32..60,
        millis in proptest::option::of(0u32..1000),
        zone in prop_oneof![Just("Z".to_owned()), (0u32..15, 0u32..60, any::<bool>()).prop_map(|(h, m, neg)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' }))],
        function in 0usize..DATE_FUNCTIONS.len(), n in 0u32..1_000_000, b in any::<bool>(),
    ) {
        let date = format!("{y:04}-{mo:02}-{day:02}");
        prop_assert_eq!(parsed(Literal::Date(date.clone())), vec![Parsed::Date(date.clone())]);
        let fraction = millis.map(|m| format!(".{m:03}")).unwrap_or_default();
        let datetime = format!("{date}T{h:02}:{mi:02}:{s:02}{fraction}{zone}");
        prop_assert_eq!(parsed(Literal::DateTime(datetime.clone())), vec![Parsed::DateTime(datetime)]);
        let f = DATE_FUNCTIONS[function];
        prop_assert_eq!(parsed(Literal::DateLiteral(f.to_owned())), vec![Parsed::DateFn(f.to_owned(), None)]);
        for f in ["LAST_N_DAYS", "NEXT_N_DAYS"] {
            prop_assert_eq!(
                parsed(Literal::DateLiteral(format!("{f}:{n}"))),
                vec![Parsed::DateFn(f.to_owned(), Some(i64::from(n)))]
            );
        }
        prop_assert_eq!(parsed(Literal::Bool(b)), vec![Parsed::Bool(b)]);
        prop_assert_eq!(parsed(Literal::Null), vec![Parsed::Null]);
    }
}

/// A record as uploads serialize it and typed result pages deserialize it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
struct Row {
    Name: String,
    Description: String,
    NumberOfEmployees: i64,
}

fn row() -> impl Strategy<Value = Row> {
    (any::<String>(), "[a-z,\"\r\n ;|\t'\\\\]{0,12}", any::<i64>()).prop_map(|(name, description, employees)| Row {
        Name: name,
        Description: description,
        NumberOfEmployees: employees,
    })
}

/// `records` as CSV written the way `Bulk::upload_records` writes it.
fn write_csv(records: &[Row]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    for r in records {
        writer.serialize(r).expect("serializable");
    }
    writer.into_inner().expect("flushed")
}

/// `data` cut at the given offsets.
fn cut<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for a in at {
        out.push(&data[start..a]);
        start = a;
    }
    out.push(&data[start..]);
    out
}

proptest! {
    #[test]
    fn csv_records_read_back_through_result_downloads_however_they_arrive(
        pages in proptest::collection::vec(proptest::collection::vec(row(), 1..6), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        // Each page as a result page: its own header row, arriving in arbitrary chunks.
        let bodies: Vec<Vec<u8>> = pages.iter().map(|p| write_csv(p)).collect();
        let chunked: Vec<Vec<&[u8]>> = bodies.iter().map(|b| cut(b, &cuts)).collect();
        let (out, rows) = result_csv(&chunked).expect("writing to memory");
        let expected: Vec<Row> = pages.concat();
        prop_assert_eq!(rows, expected.len() as u64);
        // Read as typed query results are.
        let read: Vec<Row> = csv::ReaderBuilder::new()
            .from_reader(out.as_slice())
            .deserialize()
            .collect::<Result<_, _>>()
            .expect("the written CSV reads back");
        prop_assert_eq!(read, expected);
    }
}

/// A record of a query page, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Attributes {
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
struct Account {
    attributes: Attributes,
    Id: String,
    Name: Option<String>,
    AnnualRevenue: Option<f64>,
    NumberOfEmployees: Option<i64>,
    IsDeleted: bool,
}

fn account() -> impl Strategy<Value = Value> {
    (
        "[a-zA-Z0-9]{18}",
        proptest::option::of(any::<String>()),
        proptest::option::of(any::<f64>().prop_filter("finite", |d| d.is_finite())),
        proptest::option::of(any::<i64>()),
        any::<bool>(),
    )
        .prop_map(|(id, name, revenue, employees, deleted)| {
            json!({
                "attributes": {"type": "Account", "url": format!("/services/data/v66.0/sobjects/Account/{id}")},
                "Id": id,
                "Name": name,
                "AnnualRevenue": revenue,
                "NumberOfEmployees": employees,
                "IsDeleted": deleted,
            })
        })
}

proptest! {
    #[test]
    fn page_records_decode_to_typed_records_and_back_to_the_same_json(
        records in proptest::collection::vec(account(), 0..8),
        next in proptest::option::of("[0-9A-Za-z-]{1,20}"),
        total in any::<u32>(),
    ) {
        let mut page = json!({"totalSize": total, "done": next.is_none(), "records": records});
        if let Some(n) = &next {
            page["nextRecordsUrl"] = json!(format!("/services/data/v66.0/query/01g{n}"));
        }
        let body = serde_json::to_vec(&page).expect("JSON");
        let typed: Page<Account> = decode_page(Some("application/json;charset=UTF-8"), &body).expect("a page");
        prop_assert_eq!(serde_json::to_value(&typed).expect("JSON"), page.clone());
        let values: Page<Value> = decode_page(Some("application/json;charset=UTF-8"), &body).expect("a page");
        prop_assert_eq!(serde_json::to_value(&values).expect("JSON"), page);
    }
}
