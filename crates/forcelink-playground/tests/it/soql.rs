//! SOQL grammar and semantics, table-driven over a small known data set.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn fixture_org() -> (forcelink_test_support::PlaygroundHandle, Api) {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let acme = api.create("Account", json!({"Name": "Acme", "Industry": "Banking", "AnnualRevenue": 100, "Rating": "Hot", "NumberOfEmployees": 10})).await;
    let beta = api
        .create("Account", json!({"Name": "Beta", "Industry": "Energy", "AnnualRevenue": 200, "NumberOfEmployees": 20}))
        .await;
    api.create("Account", json!({"Name": "Gamma O'Neil", "NumberOfEmployees": 30})).await;
    api.create("Account", json!({"Name": "delta_1", "Industry": "Banking", "AnnualRevenue": 50})).await;
    api.create("Contact", json!({"FirstName": "Ann", "LastName": "Lee", "AccountId": acme, "Email": "ann@example.com", "Birthdate": "1990-05-01"})).await;
    api.create("Contact", json!({"FirstName": "Bob", "LastName": "Ray", "AccountId": acme})).await;
    api.create("Contact", json!({"FirstName": "Cy", "LastName": "Dee", "AccountId": beta})).await;
    api.create("Contact", json!({"LastName": "Solo"})).await;
    api.create("Invoice__c", json!({"Name": "inv1", "Tags__c": "Urgent;Export", "Account__c": acme})).await;
    api.create("Invoice__c", json!({"Name": "inv2", "Tags__c": "Discount"})).await;
    api.create("Invoice__c", json!({"Name": "inv3"})).await;
    (pg, api)
}

fn names(body: &Value) -> Vec<String> {
    body["records"].as_array().unwrap().iter().map(|r| r["Name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn where_order_limit_table() {
    let (_pg, api) = fixture_org().await;
    // (query, expected names; sorted when the query has no ORDER BY)
    let table: &[(&str, &[&str])] = &[
        ("SELECT Name FROM Account ORDER BY Name", &["Acme", "Beta", "delta_1", "Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE Industry = 'banking'", &["Acme", "delta_1"]),
        ("SELECT Name FROM Account WHERE Industry != 'Banking'", &["Beta", "Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE Industry <> 'Banking'", &["Beta", "Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE Industry = null", &["Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE Industry != null", &["Acme", "Beta", "delta_1"]),
        ("SELECT Name FROM Account WHERE AnnualRevenue > 60 AND AnnualRevenue <= 200", &["Acme", "Beta"]),
        ("SELECT Name FROM Account WHERE AnnualRevenue < 100.5 AND AnnualRevenue >= -1", &["Acme", "delta_1"]),
        ("SELECT Name FROM Account WHERE Name LIKE 'delta\\_%'", &["delta_1"]),
        ("SELECT Name FROM Account WHERE Name LIKE 'a%'", &["Acme"]),
        ("SELECT Name FROM Account WHERE Name LIKE '%e%'", &["Acme", "Beta", "delta_1", "Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE Industry IN ('Banking', 'Energy')", &["Acme", "Beta", "delta_1"]),
        ("SELECT Name FROM Account WHERE Industry NOT IN ('Banking')", &["Beta", "Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE NOT (Industry = 'Banking' OR Rating = 'Hot')", &["Beta", "Gamma O'Neil"]),
        (
            "SELECT Name FROM Account WHERE (Industry = 'Banking' AND Rating = 'Hot') OR Name = 'Beta'",
            &["Acme", "Beta"],
        ),
        ("SELECT Name FROM Account WHERE Name = 'Gamma O\\'Neil'", &["Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE IsDeleted = false AND NumberOfEmployees >= 20", &["Beta", "Gamma O'Neil"]),
        (
            "SELECT Name FROM Account ORDER BY Industry DESC NULLS FIRST, Name",
            &["Gamma O'Neil", "Beta", "Acme", "delta_1"],
        ),
        (
            "SELECT Name FROM Account ORDER BY AnnualRevenue ASC NULLS LAST",
            &["delta_1", "Acme", "Beta", "Gamma O'Neil"],
        ),
        ("SELECT Name FROM Account ORDER BY AnnualRevenue", &["Gamma O'Neil", "delta_1", "Acme", "Beta"]),
        ("SELECT Name FROM Account ORDER BY AnnualRevenue DESC", &["Beta", "Acme", "delta_1", "Gamma O'Neil"]),
        ("SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 1", &["Beta", "delta_1"]),
        ("SELECT Name FROM Account ORDER BY Name DESC LIMIT 1", &["Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE CreatedDate = TODAY", &["Acme", "Beta", "delta_1", "Gamma O'Neil"]),
        ("SELECT Name FROM Account WHERE CreatedDate = YESTERDAY", &[]),
        ("SELECT Name FROM Account WHERE CreatedDate = LAST_N_DAYS:3", &["Acme", "Beta", "delta_1", "Gamma O'Neil"]),
        (
            "SELECT Name FROM Account WHERE CreatedDate > 2000-01-01T00:00:00Z",
            &["Acme", "Beta", "delta_1", "Gamma O'Neil"],
        ),
        ("SELECT Name FROM Account WHERE CreatedDate < 2000-01-01T00:00:00.000+0000", &[]),
        ("select name from account where industry = 'Energy'", &["Beta"]),
        ("SELECT Name FROM Contact WHERE Account.Name = 'Acme' ORDER BY Name", &["Ann Lee", "Bob Ray"]),
        ("SELECT Name FROM Contact WHERE Account.Industry = null", &["Solo"]),
        ("SELECT Name FROM Contact WHERE Birthdate < 1991-01-01", &["Ann Lee"]),
        ("SELECT Name FROM Contact c WHERE c.LastName = 'Dee'", &["Cy Dee"]),
        ("SELECT Name FROM Invoice__c WHERE Tags__c INCLUDES ('Urgent')", &["inv1"]),
        ("SELECT Name FROM Invoice__c WHERE Tags__c INCLUDES ('Export;Urgent', 'Nothing')", &["inv1"]),
        ("SELECT Name FROM Invoice__c WHERE Tags__c INCLUDES ('Export;Discount')", &[]),
        ("SELECT Name FROM Invoice__c WHERE Tags__c EXCLUDES ('Urgent')", &["inv2", "inv3"]),
        ("SELECT Name FROM Invoice__c WHERE Account__r.Name = 'Acme'", &["inv1"]),
    ];
    for (q, want) in table {
        let body = api.query(q).await;
        let mut got = names(&body);
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        if !q.contains("ORDER BY") {
            got.sort();
            want.sort();
        }
        assert_eq!(got, want, "{q}");
        assert_eq!(body["totalSize"], want.len(), "{q}");
        assert_eq!(body["done"], true, "{q}");
    }
}

#[tokio::test]
async fn records_nest_parents_and_children() {
    let (_pg, api) = fixture_org().await;
    let body = api.query("SELECT Id, Name, Account.Name, Account.Owner.Name FROM Contact WHERE LastName IN ('Lee', 'Solo') ORDER BY LastName").await;
    let lee = &body["records"][0];
    assert_eq!(lee["attributes"]["type"], "Contact");
    assert_eq!(
        lee["attributes"]["url"],
        format!("/services/data/v66.0/sobjects/Contact/{}", lee["Id"].as_str().unwrap())
    );
    assert_eq!(lee["Account"]["Name"], "Acme");
    assert_eq!(lee["Account"]["attributes"]["type"], "Account");
    assert_eq!(lee["Account"]["Owner"]["Name"], "Ada Admin");
    assert_eq!(lee["Account"]["Owner"]["attributes"]["type"], "User");
    let keys: Vec<&String> = lee.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "Id", "Name", "Account"]);
    assert_eq!(body["records"][1]["Account"], Value::Null);

    let body = api
        .query("SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName DESC) FROM Account ORDER BY Name")
        .await;
    let acme = &body["records"][0];
    assert_eq!(acme["Contacts"]["totalSize"], 2);
    assert_eq!(acme["Contacts"]["done"], true);
    assert_eq!(acme["Contacts"]["records"][0]["LastName"], "Ray");
    assert_eq!(acme["Contacts"]["records"][0]["attributes"]["type"], "Contact");
    assert_eq!(body["records"][1]["Contacts"]["totalSize"], 1);
    assert_eq!(body["records"][2]["Contacts"], Value::Null);
    let body = api
        .query(
            "SELECT Name, (SELECT Name FROM Invoices__r WHERE Name = 'inv1' LIMIT 1) FROM Account WHERE Name = 'Acme'",
        )
        .await;
    assert_eq!(body["records"][0]["Invoices__r"]["records"][0]["Name"], "inv1");
}

#[tokio::test]
async fn count_and_aggregates() {
    let (_pg, api) = fixture_org().await;
    let body = api.query("SELECT COUNT() FROM Contact").await;
    assert_eq!(body, json!({"totalSize": 4, "done": true, "records": []}));
    let body = api.query("SELECT COUNT() FROM Contact WHERE AccountId != null LIMIT 2").await;
    assert_eq!(body["totalSize"], 2);
    let body = api
        .query("SELECT Industry, COUNT(Id) n, SUM(AnnualRevenue) FROM Account GROUP BY Industry ORDER BY Industry")
        .await;
    assert_eq!(body["totalSize"], 3);
    let banking = body["records"].as_array().unwrap().iter().find(|r| r["Industry"] == "Banking").unwrap();
    assert_eq!(banking["attributes"], json!({"type": "AggregateResult"}));
    assert_eq!(banking["n"], 2);
    assert_eq!(banking["expr0"].as_f64(), Some(150.0));
}

#[tokio::test]
async fn query_all_includes_deleted_records() {
    let (_pg, api) = fixture_org().await;
    let body = api.query("SELECT Id FROM Account WHERE Name = 'Beta'").await;
    let id = body["records"][0]["Id"].as_str().unwrap().to_owned();
    api.delete(&format!("sobjects/Account/{id}")).await;
    assert_eq!(api.query("SELECT COUNT() FROM Account").await["totalSize"], 3);
    let (status, all) = api.get("queryAll?q=SELECT+Name,+IsDeleted+FROM+Account+WHERE+Name+=+'Beta'").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["records"][0]["IsDeleted"], true);
    // Deleting the account took its contact with it.
    assert_eq!(api.query("SELECT COUNT() FROM Contact WHERE LastName = 'Dee'").await["totalSize"], 0);
}

#[tokio::test]
async fn errors_are_salesforce_shaped() {
    let (_pg, api) = fixture_org().await;
    const NO_COLUMN: &str = "No such column 'Foo' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.";
    const NO_RELATIONSHIP: &str = "Didn't understand relationship 'Acount' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.";
    let no_column = format!("\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\n{NO_COLUMN}");
    let no_relationship = format!(
        "\nSELECT Id FROM Contact WHERE Acount.Name = 'x'\n                             ^\nERROR at Row:1:Column:30\n{NO_RELATIONSHIP}"
    );
    // Errors inside the query carry Salesforce's layout (the query, a caret, the row and
    // column); an error at the very first token keeps the short form (recorded answer).
    let table: &[(&str, &str, &str)] = &[
        ("q=SELECT Id FROM Account", "MALFORMED_QUERY", "unexpected token: q"),
        (
            "SELECT Id FORM Account",
            "MALFORMED_QUERY",
            "\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: FORM",
        ),
        (
            "SELECT Id FROM Account WHERE",
            "MALFORMED_QUERY",
            "\nSELECT Id FROM Account WHERE\n                            ^\nERROR at Row:1:Column:29\nunexpected token: <EOF>",
        ),
        (
            "SELECT Id FROM Account LIMIT ten",
            "MALFORMED_QUERY",
            "\nSELECT Id FROM Account LIMIT ten\n                             ^\nERROR at Row:1:Column:30\nunexpected token: ten",
        ),
        (
            "SELECT Id FROM Whizbang",
            "INVALID_TYPE",
            "\nSELECT Id FROM Whizbang\n               ^\nERROR at Row:1:Column:16\nsObject type 'Whizbang' is not supported.",
        ),
        ("SELECT Id, Foo FROM Account", "INVALID_FIELD", &no_column),
        ("SELECT Id FROM Contact WHERE Acount.Name = 'x'", "INVALID_FIELD", &no_relationship),
        (
            "SELECT Id FROM Account WHERE IsDeleted = 'false'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "value of filter criterion for field 'IsDeleted' must be of type boolean and should not be enclosed in quotes",
        ),
    ];
    for (q, code, message) in table {
        let (status, body) = api.query_status(q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body, json!([{"message": message, "errorCode": code}]), "{q}");
    }
    let (status, body) = api.get("query").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
}

#[tokio::test]
async fn search_finds_terms_in_returning_objects() {
    let (_pg, api) = fixture_org().await;
    let url = reqwest::Url::parse_with_params(
        &api.url("search"),
        &[("q", "FIND {acme} IN ALL FIELDS RETURNING Account(Id, Name), Contact(Name)")],
    )
    .unwrap();
    let (status, body) = status_json(api.http.get(url).bearer_auth(&api.token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let recs = body["searchRecords"].as_array().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["Name"], "Acme");
    assert_eq!(recs[0]["attributes"]["type"], "Account");
    // Old versions answer a bare array.
    let old = api.at_version("26.0");
    let url = reqwest::Url::parse_with_params(&old.url("search"), &[("q", "FIND {ann@example.com}")]).unwrap();
    let (_, body) = status_json(old.http.get(url).bearer_auth(&old.token).send().await.unwrap()).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["attributes"]["type"], "Contact");
    let (status, body) = api.get("search?q=bar").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!([{"message": "No search term found. The search term must be enclosed in braces.", "errorCode": "MALFORMED_SEARCH"}])
    );
}
