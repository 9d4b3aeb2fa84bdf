//! The data generator: `--generate Account=1000000,Contact=200000` (or `[generate]` in the
//! seed) fills objects with realistic, deterministic records in one transaction with one
//! prepared statement per object, so a million rows take seconds.

use rusqlite::params_from_iter;
use rusqlite::types::Value as Sql;

use crate::civil;
use crate::ids;
use crate::schema::{FieldType, SObject};
use crate::store::{Db, quote};

/// A small deterministic generator (xorshift64*): the same spec gives the same records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Ken",
    "Radia",
    "Linus",
    "Sophie",
    "Tim",
    "Katherine",
    "Dennis",
    "Hedy",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Anita",
    "Bjarne",
    "Carol",
    "Whitfield",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Torvalds",
    "Wilson",
    "Berners-Lee",
    "Johnson",
    "Ritchie",
    "Lamarr",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Borg",
    "Stroustrup",
    "Shaw",
    "Diffie",
];
const WORDS: &[&str] = &[
    "Acme",
    "Global",
    "United",
    "Pacific",
    "Summit",
    "Blue",
    "Northern",
    "Granite",
    "Silver",
    "Pioneer",
    "Atlas",
    "Vertex",
    "Harbor",
    "Crescent",
    "Evergreen",
    "Redwood",
    "Quantum",
    "Sterling",
    "Beacon",
    "Horizon",
];
const NOUNS: &[&str] = &[
    "Systems",
    "Foods",
    "Logistics",
    "Energy",
    "Textiles",
    "Media",
    "Health",
    "Robotics",
    "Capital",
    "Farms",
    "Motors",
    "Labs",
    "Networks",
    "Builders",
    "Outfitters",
    "Partners",
];
const SUFFIX: &[&str] = &["Inc.", "Corp.", "LLC", "Ltd.", "plc", "GmbH", "Group", "Co."];
const CITIES: &[(&str, &str, &str)] = &[
    ("San Francisco", "CA", "US"),
    ("New York", "NY", "US"),
    ("Chicago", "IL", "US"),
    ("Austin", "TX", "US"),
    ("Seattle", "WA", "US"),
    ("Boston", "MA", "US"),
    ("London", "", "GB"),
    ("Paris", "", "FR"),
    ("Berlin", "", "DE"),
    ("Tokyo", "", "JP"),
    ("Sydney", "NSW", "AU"),
    ("Toronto", "ON", "CA"),
];
const TITLES: &[&str] = &["CEO", "CFO", "VP Sales", "Buyer", "Engineer", "Office Manager", "Director", "Analyst"];

/// Parses `Account=1000,Contact=50`.
pub(crate) fn parse_spec(spec: &str) -> Result<Vec<(String, u64)>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, n) = part.split_once('=').ok_or_else(|| format!("{part:?}: expected Object=count"))?;
        let n: u64 = n.trim().replace('_', "").parse().map_err(|_| format!("{part:?}: the count is not a number"))?;
        out.push((name.trim().to_owned(), n));
    }
    Ok(out)
}

/// Adds `count` generated records to each object, parents before children.
pub(crate) fn generate(db: &mut Db, spec: &[(String, u64)], now_ms: i64, owner: &str) -> Result<(), String> {
    let order = ["Account", "Contact", "Lead", "Opportunity", "Case"];
    let mut sorted: Vec<&(String, u64)> = spec.iter().collect();
    sorted.sort_by_key(|(name, _)| order.iter().position(|o| o.eq_ignore_ascii_case(name)).unwrap_or(order.len()));
    for (name, count) in sorted {
        let oi = db.schema.index_of(name).ok_or_else(|| format!("--generate: no object {name:?}"))?;
        let o = db.schema.objects[oi].clone();
        if !o.createable && !o.custom {
            return Err(format!("--generate: {} records cannot be generated", o.name));
        }
        fill(db, oi, &o, *count, now_ms, owner).map_err(|e| format!("--generate {}: {e}", o.name))?;
    }
    Ok(())
}

fn parents(db: &Db, name: &str) -> (String, i64) {
    match db.schema.index_of(name) {
        Some(i) => {
            let o = &db.schema.objects[i];
            let max: i64 = db
                .conn
                .query_row(&format!("SELECT COALESCE(MAX(rid), 0) FROM {}", o.table()), [], |r| r.get(0))
                .unwrap_or(0);
            (o.key_prefix.clone(), max)
        }
        None => (String::new(), 0),
    }
}

fn fill(db: &mut Db, oi: usize, o: &SObject, count: u64, now_ms: i64, owner: &str) -> rusqlite::Result<()> {
    let (acct_prefix, accounts) = parents(db, "Account");
    let (contact_prefix, contacts) = parents(db, "Contact");
    let cols: Vec<String> = std::iter::once("rid".to_owned()).chain(o.fields.iter().map(|f| quote(&f.name))).collect();
    let marks = vec!["?"; cols.len()].join(",");
    let sql = format!("INSERT INTO {} ({}) VALUES ({marks})", o.table(), cols.join(","));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (oi as u64 + 1).wrapping_mul(0x1234_5678_9ABC_DEF1));
    let day = now_ms.div_euclid(civil::DAY_MS);
    let mut next = db.next_row_mut()[oi];
    let tx = db.conn.unchecked_transaction()?;
    // Maintaining the indexes row by row dominates a large fill (B-tree seeks with
    // case-insensitive compares on columns that mostly hold one owner id): drop them for the
    // fill and build them once afterwards, inside the same transaction.
    let indexes: Vec<(String, String)> = if count >= 10_000 {
        let table = o.table();
        let mut q = tx.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
        )?;
        let list = q
            .query_map([table.trim_matches('"')], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (name, _) in &list {
            tx.execute_batch(&format!("DROP INDEX {}", quote(name)))?;
        }
        list
    } else {
        Vec::new()
    };
    {
        let mut st = tx.prepare(&sql)?;
        let mut row: Vec<Sql> = vec![Sql::Null; cols.len()];
        for _ in 0..count {
            let (rid, id) = db_next(&mut next, &o.key_prefix);
            let created = now_ms - (rng.below(730 * civil::DAY_MS as u64) as i64) - 60_000;
            let created_s = civil::format_datetime(created);
            let (city, state, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
            let first = rng.pick(FIRST);
            let last = rng.pick(LAST);
            let company = format!("{} {} {}", rng.pick(WORDS), rng.pick(NOUNS), rng.pick(SUFFIX));
            row[0] = Sql::Integer(rid);
            for (i, f) in o.fields.iter().enumerate() {
                let v = match f.name.as_str() {
                    "Id" => Sql::Text(id.clone()),
                    "IsDeleted" => Sql::Integer(0),
                    "OwnerId" | "CreatedById" | "LastModifiedById" => Sql::Text(owner.to_owned()),
                    "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => Sql::Text(created_s.clone()),
                    "Name" if o.name == "Contact" || o.name == "Lead" => Sql::Text(format!("{first} {last}")),
                    "Name" if o.name == "Opportunity" => {
                        Sql::Text(format!("{company} - {}", rng.pick(&["New Business", "Renewal", "Upsell"])))
                    }
                    "Name" if o.name == "Account" => Sql::Text(company.clone()),
                    "Name" => Sql::Text(format!("{} {}", o.label, rid)),
                    "FirstName" => Sql::Text(first.to_owned()),
                    "LastName" => Sql::Text(last.to_owned()),
                    "Company" => Sql::Text(company.clone()),
                    "Email" => Sql::Text(format!(
                        "{}.{}{}@example.com",
                        first.to_ascii_lowercase(),
                        last.to_ascii_lowercase(),
                        rid
                    )),
                    "Title" => Sql::Text(rng.pick(TITLES).to_owned()),
                    "Phone" | "MobilePhone" => {
                        Sql::Text(format!("(555) {:03}-{:04}", rng.below(1000), rng.below(10_000)))
                    }
                    "Website" => Sql::Text(format!(
                        "https://www.{}.example.com",
                        company.split(' ').next().unwrap_or("acme").to_ascii_lowercase()
                    )),
                    "AnnualRevenue" => Sql::Real((rng.below(5_000) * 100_000) as f64),
                    "NumberOfEmployees" => Sql::Integer(1 + rng.below(50_000) as i64),
                    "Amount" => Sql::Real((rng.below(100_000) * 10) as f64),
                    "Probability" => Sql::Real((rng.below(11) * 10) as f64),
                    "CloseDate" => Sql::Text(civil::format_date(day - 180 + rng.below(365) as i64)),
                    "StageName" => Sql::Text(
                        rng.pick(&[
                            "Prospecting",
                            "Qualification",
                            "Needs Analysis",
                            "Negotiation/Review",
                            "Closed Won",
                            "Closed Lost",
                        ])
                        .to_owned(),
                    ),
                    "Subject" => Sql::Text(format!(
                        "{} issue with {}",
                        rng.pick(&["Billing", "Login", "Shipping", "Performance"]),
                        rng.pick(NOUNS)
                    )),
                    "CaseNumber" => Sql::Text(format!("{rid:08}")),
                    "BillingCity" | "ShippingCity" | "MailingCity" | "City" => Sql::Text(city.to_owned()),
                    "BillingState" | "ShippingState" | "MailingState" | "State" if !state.is_empty() => {
                        Sql::Text(state.to_owned())
                    }
                    "BillingCountry" | "ShippingCountry" | "MailingCountry" | "Country" => {
                        Sql::Text(country.to_owned())
                    }
                    "BillingPostalCode" | "MailingPostalCode" | "PostalCode" => {
                        Sql::Text(format!("{:05}", rng.below(100_000)))
                    }
                    "BillingStreet" | "MailingStreet" | "Street" => {
                        Sql::Text(format!("{} {} St.", 1 + rng.below(9999), rng.pick(WORDS)))
                    }
                    "AccountId" if accounts > 0 => Sql::Text(ids::mint(&acct_prefix, 1 + rng.below(accounts as u64))),
                    "ContactId" if contacts > 0 && o.name == "Case" => {
                        Sql::Text(ids::mint(&contact_prefix, 1 + rng.below(contacts as u64)))
                    }
                    _ => match f.ftype {
                        FieldType::Boolean => Sql::Integer(0),
                        FieldType::Picklist if !f.picklist.is_empty() && !f.name.ends_with("SidKey") => {
                            match &f.default_value {
                                Some(d) if rng.below(2) == 0 => Sql::Text(d.clone()),
                                _ => Sql::Text(f.picklist[rng.below(f.picklist.len() as u64) as usize].clone()),
                            }
                        }
                        FieldType::Int if f.custom => Sql::Integer(rng.below(1000) as i64),
                        FieldType::Double | FieldType::Currency | FieldType::Percent if f.custom => {
                            Sql::Real(rng.below(100_000) as f64 / 100.0)
                        }
                        FieldType::String | FieldType::TextArea if f.custom && !f.external_id => {
                            Sql::Text(format!("{} {}", rng.pick(WORDS), rid))
                        }
                        FieldType::String if f.custom && f.external_id => {
                            Sql::Text(format!("GEN-{}-{rid}", o.key_prefix))
                        }
                        FieldType::Date if f.custom => Sql::Text(civil::format_date(day - rng.below(365) as i64)),
                        _ => match &f.default_value {
                            Some(d) => Sql::Text(d.clone()),
                            None => Sql::Null,
                        },
                    },
                };
                row[i + 1] = v;
            }
            if o.name == "Opportunity" {
                let stage = match o.field_index("StageName").map(|i| &row[i + 1]) {
                    Some(Sql::Text(s)) => s.clone(),
                    _ => String::new(),
                };
                if let Some(i) = o.field_index("IsClosed") {
                    row[i + 1] = Sql::Integer(i64::from(stage.starts_with("Closed")));
                }
                if let Some(i) = o.field_index("IsWon") {
                    row[i + 1] = Sql::Integer(i64::from(stage == "Closed Won"));
                }
            }
            st.execute(params_from_iter(row.iter()))?;
        }
    }
    for (_, create) in &indexes {
        tx.execute_batch(create)?;
    }
    tx.commit()?;
    db.next_row_mut()[oi] = next;
    Ok(())
}

fn db_next(next: &mut i64, prefix: &str) -> (i64, String) {
    let row = *next;
    *next += 1;
    (row, ids::mint(prefix, row as u64))
}

#[cfg(test)]
mod tests {
    use super::parse_spec;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_spec("Account=1_000, Contact=5").unwrap(),
            vec![("Account".into(), 1000), ("Contact".into(), 5)]
        );
        assert!(parse_spec("Account").unwrap_err().contains("Object=count"));
        assert!(parse_spec("Account=x").unwrap_err().contains("not a number"));
    }
}
