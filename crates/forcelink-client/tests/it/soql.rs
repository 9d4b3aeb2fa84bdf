//! The SOQL builder against the playground's own SOQL parser: hostile values match exactly the
//! record that holds them, never more.

use forcelink_client::soql::{Condition, Select};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn hostile_values_match_only_their_own_record() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let hostile = [
        "O'Brien",
        "x' OR Name != 'y",
        "back\\slash\\",
        "\\' OR Id != null OR Name = '\\",
        "quote \" and tab\t and newline\n",
        "50% off_now",
        "%",
        "_",
        "emoji 🚀 ünïcödé",
    ];
    let accounts = client.sobject("Account").unwrap();
    for name in hostile {
        accounts.create(&json!({"Name": name})).send().await.unwrap();
    }
    accounts.create(&json!({"Name": "Bystander 50X offXnow"})).send().await.unwrap();
    for name in hostile {
        let q = Select::from("Account").fields(["Name"]).filter(Condition::eq("Name", name)).build().unwrap();
        let page = client.query(q.clone()).send().await.unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(page.total_size, 1, "{q}");
        assert_eq!(page.records[0]["Name"], name, "{q}");
        // LIKE with the value's own % and _ escaped: only the literal match.
        let q = Select::count("Account").filter(Condition::like_exactly("Name", name)).build().unwrap();
        assert_eq!(client.query(q.clone()).send().await.unwrap().total_size, 1, "{q}");
    }
    let q = Select::count("Account").filter(Condition::like_contains("Name", "50% off_")).build().unwrap();
    assert_eq!(client.query(q).send().await.unwrap().total_size, 1);
    let q = Select::count("Account").filter(Condition::is_in("Name", ["O'Brien", "%", "nobody"])).build().unwrap();
    assert_eq!(client.query(q).send().await.unwrap().total_size, 2);
}
