//! SOQL beyond plain selects: HAVING, ROLLUP/CUBE, ORDER BY aggregates, semi- and anti-joins,
//! TYPEOF, FIELDS() and its limits, child subqueries paging on their own, and the accepted
//! clauses (FOR VIEW/REFERENCE, WITH SECURITY_ENFORCED/USER_MODE).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn org() -> (forcelink_test_support::PlaygroundHandle, Api) {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let acme = api
        .create("Account", json!({"Name": "Acme", "Industry": "Banking", "Rating": "Hot", "AnnualRevenue": 100}))
        .await;
    let beta = api.create("Account", json!({"Name": "Beta", "Industry": "Energy", "AnnualRevenue": 200})).await;
    api.create("Account", json!({"Name": "Gamma", "Industry": "Banking", "Rating": "Cold", "AnnualRevenue": 50})).await;
    api.create("Contact", json!({"LastName": "Lee", "AccountId": acme})).await;
    api.create("Contact", json!({"LastName": "Ray", "AccountId": acme})).await;
    api.create("Contact", json!({"LastName": "Dee", "AccountId": beta})).await;
    (pg, api)
}

fn names(body: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        body["records"].as_array().unwrap().iter().map(|r| r["Name"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn having_rollup_and_aggregate_order() {
    let (_pg, api) = org().await;
    let body = api
        .query("SELECT Industry, COUNT(Id) n, SUM(AnnualRevenue) FROM Account GROUP BY Industry HAVING COUNT(Id) > 1")
        .await;
    assert_eq!(body["totalSize"], 1, "{body}");
    assert_eq!(
        body["records"][0],
        json!({"attributes": {"type": "AggregateResult"}, "Industry": "Banking", "n": 2, "expr0": 150.0})
    );
    let body = api
        .query(
            "SELECT Industry, MAX(AnnualRevenue) top FROM Account GROUP BY Industry ORDER BY MAX(AnnualRevenue) DESC",
        )
        .await;
    let order: Vec<&str> =
        body["records"].as_array().unwrap().iter().map(|r| r["Industry"].as_str().unwrap()).collect();
    assert_eq!(order, ["Energy", "Banking"], "{body}");
    // ROLLUP adds a subtotal per Industry and a grand total (keys null), after the groups.
    let body = api.query("SELECT Industry, Rating, COUNT(Id) FROM Account GROUP BY ROLLUP(Industry, Rating)").await;
    let rows: Vec<(Value, Value, i64)> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["Industry"].clone(), r["Rating"].clone(), r["expr0"].as_i64().unwrap()))
        .collect();
    assert!(rows.contains(&(json!("Banking"), json!("Hot"), 1)), "{body}");
    assert!(rows.contains(&(json!("Banking"), Value::Null, 2)), "{body}");
    assert_eq!(rows.last().unwrap(), &(Value::Null, Value::Null, 3), "{body}");
    let cube = api.query("SELECT Industry, Rating, COUNT(Id) FROM Account GROUP BY CUBE(Industry, Rating)").await;
    let by_rating_only =
        cube["records"].as_array().unwrap().iter().filter(|r| r["Industry"].is_null() && r["Rating"] == "Cold").count();
    assert_eq!(by_rating_only, 1, "{cube}");
    let (status, body) = api.query_status("SELECT Name FROM Account HAVING COUNT(Id) > 1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn semi_and_anti_joins() {
    let (_pg, api) = org().await;
    let with = api.query("SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact)").await;
    assert_eq!(names(&with), ["Acme", "Beta"]);
    let with =
        api.query("SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE LastName = 'Dee')").await;
    assert_eq!(names(&with), ["Beta"]);
    let without = api.query("SELECT Name FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)").await;
    assert_eq!(names(&without), ["Gamma"]);
    let mixed = api
        .query("SELECT Name FROM Account WHERE Industry = 'Banking' AND Id NOT IN (SELECT AccountId FROM Contact WHERE LastName = 'Lee')")
        .await;
    assert_eq!(names(&mixed), ["Gamma"]);
    let contacts = api
        .query("SELECT LastName FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE Rating = 'Hot')")
        .await;
    assert_eq!(contacts["totalSize"], 2, "{contacts}");
    let (status, body) = api.query_status("SELECT Name FROM Account WHERE Id IN (SELECT LastName FROM Contact)").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY", "{body}");
}

#[tokio::test]
async fn typeof_fields_and_accepted_clauses() {
    let (pg, api) = org().await;
    let body = api
        .query("SELECT Name, TYPEOF Owner WHEN User THEN Username, Email WHEN Group THEN Name END FROM Account WHERE Name = 'Acme'")
        .await;
    let owner = &body["records"][0]["Owner"];
    assert_eq!(owner["attributes"]["type"], "User", "{body}");
    assert_eq!(owner["Username"], pg.info.user.username.as_str());
    assert!(owner.get("Email").is_some());

    let standard = api.query("SELECT FIELDS(STANDARD) FROM Account WHERE Name = 'Acme'").await;
    let rec = &standard["records"][0];
    assert_eq!(rec["Name"], "Acme");
    assert!(rec.get("CreatedDate").is_some() && rec.get("Industry").is_some(), "{rec}");
    let all = api.query("SELECT FIELDS(ALL) FROM Invoice__c LIMIT 200").await;
    assert_eq!(all["totalSize"], 0);
    let (status, body) = api.query_status("SELECT FIELDS(ALL) FROM Account").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    assert!(
        body[0]["message"].as_str().unwrap().ends_with("\nThe SOQL FIELDS function must have a LIMIT of at most 200"),
        "{body}"
    );
    let (status, _) = api.query_status("SELECT FIELDS(CUSTOM) FROM Account LIMIT 201").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let custom = api.query("SELECT FIELDS(CUSTOM) FROM Account LIMIT 5").await;
    assert!(custom["records"][0].get("Name").is_none(), "{custom}");

    for q in [
        "SELECT Name FROM Account WHERE Name = 'Acme' FOR VIEW",
        "SELECT Name FROM Account FOR REFERENCE",
        "SELECT Name FROM Account WHERE Name = 'Acme' WITH SECURITY_ENFORCED",
        "SELECT Name FROM Account WITH USER_MODE ORDER BY Name LIMIT 1",
    ] {
        let (status, body) = api.query_status(q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert!(body["totalSize"].as_u64().unwrap() >= 1, "{q}");
    }
}

#[tokio::test]
async fn child_subquery_pages_past_the_batch() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let acme = api.create("Account", json!({"Name": "Big"})).await;
    let records: Vec<Value> = (0..250)
        .map(|i| json!({"attributes": {"type": "Contact"}, "LastName": format!("C{i:03}"), "AccountId": acme}))
        .collect();
    for chunk in records.chunks(200) {
        let (status, body) = api.post("composite/sobjects", &json!({"records": chunk})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let url = reqwest::Url::parse_with_params(
        &api.url("query"),
        &[(
            "q",
            "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account WHERE Id = '".to_owned()
                + &acme
                + "'",
        )],
    )
    .unwrap();
    let resp =
        api.http.get(url).bearer_auth(&api.token).header("Sforce-Query-Options", "batchSize=200").send().await.unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let child = &body["records"][0]["Contacts"];
    assert_eq!(child["totalSize"], 250, "{child}");
    assert_eq!(child["done"], false);
    assert_eq!(child["records"].as_array().unwrap().len(), 200);
    assert_eq!(child["records"][199]["LastName"], "C199");
    let next = child["nextRecordsUrl"].as_str().unwrap();
    assert!(next.starts_with("/services/data/v"), "{next}");
    let rest = get_json(&format!("{}{next}", pg.instance_url()), &api.token).await;
    assert_eq!(rest["totalSize"], 250, "{rest}");
    assert_eq!(rest["done"], true);
    let rows = rest["records"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0]["LastName"], "C200");
    assert_eq!(rows[0]["attributes"]["type"], "Contact");
    // Small child results stay whole.
    let small = api.query("SELECT Name, (SELECT LastName FROM Contacts LIMIT 3) FROM Account").await;
    assert_eq!(small["records"][0]["Contacts"]["done"], true);
    assert!(small["records"][0]["Contacts"].get("nextRecordsUrl").is_none());
}

async fn get_json(url: &str, token: &str) -> Value {
    forcelink_test_support::get_json(url, token).await
}
