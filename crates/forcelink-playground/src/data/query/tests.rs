//! The encoded record writer and the in-place envelope against the reference writer, byte for
//! byte, over generated records with awkward values and a range of queries.

use parking_lot::Mutex;
use rusqlite::types::{Value as Sql, ValueRef};

use super::compile::{Compiled, compile};
use super::json::write_record;
use super::page::{ChildPaging, envelope, page, page_answer, run_children};
use crate::seed::Seed;
use crate::store::Store;
use crate::store::locators::Locators;

const NOW: i64 = 1_780_000_000_000;
const V: &str = "66.0";

fn store() -> Store {
    let seed = Seed::builtin();
    let store = Store::open(seed.schema().expect("schema"), None).expect("store");
    {
        let mut db = store.lock();
        crate::data::orgdata::populate(&mut db, &seed, &crate::ids::mint("00D", 1), NOW).expect("org data");
        let spec = [("Account".to_owned(), 300), ("Contact".to_owned(), 700)];
        crate::data::generate::generate(&mut db, &spec, NOW, &crate::ids::mint("005", 1)).expect("generate");
        // Values the fast paths must leave to the general ones: quotes, backslashes, control
        // characters, non-ASCII text, fractional and huge reals, a deleted row.
        db.conn
            .execute_batch(
                "UPDATE o_Account SET \"Name\" = 'Quote \" and \\ back' WHERE rid = 2;
                 UPDATE o_Account SET \"Description\" = 'tab\tand é ünïcode ☃' || char(10) || char(1) WHERE rid = 3;
                 UPDATE o_Account SET \"AnnualRevenue\" = 1234.5 WHERE rid = 4;
                 UPDATE o_Account SET \"AnnualRevenue\" = 1e20 WHERE rid = 5;
                 UPDATE o_Account SET \"AnnualRevenue\" = -0.25, \"NumberOfEmployees\" = -42 WHERE rid = 6;
                 UPDATE o_Account SET \"IsDeleted\" = 1 WHERE rid = 7;
                 UPDATE o_Account SET \"BillingCity\" = NULL WHERE rid = 8;",
            )
            .expect("awkward values");
    }
    store
}

const QUERIES: &[&str] = &[
    "SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account",
    "SELECT FIELDS(ALL) FROM Account LIMIT 200",
    "SELECT Id, Name, Description, NumberOfEmployees, IsDeleted, Owner.Name, Owner.Email FROM Account ORDER BY Name",
    "SELECT Id, LastName, Email, Account.Name, Account.Owner.Name, Account.AnnualRevenue FROM Contact",
    "SELECT Id, Name, (SELECT Id, LastName, Email FROM Contacts) FROM Account",
    "SELECT Id, Name FROM Account WHERE Name LIKE 'Quote%' OR AnnualRevenue < 2000",
    "SELECT Id, Name, AnnualRevenue FROM Account ORDER BY AnnualRevenue DESC LIMIT 50 OFFSET 3",
    "SELECT FIELDS(STANDARD) FROM Contact LIMIT 200",
];

#[test]
fn encoded_pages_match_the_reference_writer_byte_for_byte() {
    let store = store();
    let db = store.lock();
    for &q in QUERIES {
        for all_rows in [false, true] {
            let Ok(Compiled::Rows(plan)) = compile(&db.schema, q, all_rows, NOW) else {
                panic!("{q} compiles to rows")
            };
            let locators = Mutex::new(Locators::default());
            let paging = ChildPaging { locators: &locators, batch: 2000, now: NOW };
            let total = plan.total(&db).expect("total");
            let n = 250.min(total as usize);
            // The reference: rows as cells, each written by the reference writer.
            let rows = plan.rows(&db, 0, None, n).expect("rows");
            let ids: Vec<String> =
                rows.iter().filter_map(|r| if let Sql::Text(s) = &r[1] { Some(s.clone()) } else { None }).collect();
            let children = run_children(&db, &plan.children, &ids, V, &paging).expect("children");
            let mut reference = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    reference.push(b',');
                }
                let get = |c: usize| ValueRef::from(&r[c]);
                write_record(&mut reference, &plan.object, &plan.items, &get, 1, V, &children);
            }
            let mut fast = Vec::new();
            let (got, _) = page(&db, &plan, 0, None, n, V, &mut fast, &paging).expect("page");
            assert_eq!(got, rows.len(), "{q}");
            assert!(got > 0, "{q} has rows");
            assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&reference), "{q}");
            // The envelope written in place, for a page with a link and for the last page.
            for next in [Some("/services/data/v66.0/query/01gxx0000000001AAA-250"), None] {
                let link = |_: u64, _: usize| next.map(str::to_owned);
                let (answer, _, _) = page_answer(&db, &plan, total, 0, None, n, V, &paging, &link).expect("answer");
                assert_eq!(answer, envelope(total, next, &reference), "{q}");
                serde_json::from_slice::<serde_json::Value>(&answer).expect("the answer is JSON");
            }
        }
    }
}

#[test]
fn a_short_page_gets_the_link_of_what_it_served() {
    let store = store();
    let db = store.lock();
    let Ok(Compiled::Rows(plan)) = compile(&db.schema, "SELECT Id, Name FROM Account", false, NOW) else {
        panic!("compiles")
    };
    let locators = Mutex::new(Locators::default());
    let paging = ChildPaging { locators: &locators, batch: 2000, now: NOW };
    // Ask for more rows than there are, as after rows went away since the count.
    let total = plan.total(&db).expect("total");
    let link = |served: u64, got: usize| Some(format!("next-{served}-{got}"));
    let (answer, got, _) =
        page_answer(&db, &plan, total + 5, 0, None, total as usize + 5, V, &paging, &link).expect("answer");
    assert_eq!(got as u64, total);
    let v: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
    assert_eq!(v["nextRecordsUrl"], format!("next-{total}-{total}"));
    assert_eq!(v["records"].as_array().map(Vec::len), Some(total as usize));
}
