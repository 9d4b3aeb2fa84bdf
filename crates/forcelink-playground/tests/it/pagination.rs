//! Query pages: locators, batch sizes, versions, no record lost or repeated.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

async fn generated(accounts: u64) -> (forcelink_test_support::PlaygroundHandle, Api) {
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".into(), accounts)]).await;
    let api = admin_api(&pg).await;
    (pg, api)
}

/// Follows nextRecordsUrl to the end; returns the page sizes and all records.
async fn drain(api: &Api, first: Value) -> (Vec<usize>, Vec<Value>) {
    let mut sizes = Vec::new();
    let mut all = Vec::new();
    let mut page = first;
    for _ in 0..100 {
        let recs = page["records"].as_array().unwrap().clone();
        sizes.push(recs.len());
        all.extend(recs);
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            return (sizes, all);
        }
        let next = page["nextRecordsUrl"].as_str().unwrap().to_owned();
        let (status, body) = api.get(&next).await;
        assert_eq!(status, StatusCode::OK, "{next}: {body}");
        page = body;
    }
    panic!("more than 100 pages");
}

#[tokio::test]
async fn pages_of_2000_lose_and_repeat_nothing() {
    let (_pg, api) = generated(4500).await;
    let first = api.query("SELECT Id, Name, Industry, AnnualRevenue, BillingCity, CreatedDate FROM Account").await;
    assert_eq!(first["totalSize"], 4500);
    assert_eq!(first["done"], false);
    assert!(first["nextRecordsUrl"].as_str().unwrap().starts_with("/services/data/v66.0/query/01g"));
    let (sizes, all) = drain(&api, first).await;
    assert_eq!(sizes, vec![2000, 2000, 500]);
    let ids: HashSet<&str> = all.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4500);
    assert!(all.iter().all(|r| r["Name"].is_string() && r["CreatedDate"].is_string()));
}

#[tokio::test]
async fn batch_size_header_and_ordered_paging() {
    let (_pg, api) = generated(1100).await;
    let url =
        reqwest::Url::parse_with_params(&api.url("query"), &[("q", "SELECT Id, Name FROM Account ORDER BY Name, Id")])
            .unwrap();
    let resp =
        api.http.get(url).bearer_auth(&api.token).header("Sforce-Query-Options", "batchSize=300").send().await.unwrap();
    let (_, first) = status_json(resp).await;
    let (sizes, all) = drain(&api, first).await;
    assert_eq!(sizes, vec![300, 300, 300, 200]);
    let names: Vec<String> = all.iter().map(|r| r["Name"].as_str().unwrap().to_lowercase()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(all.iter().map(|r| r["Id"].as_str().unwrap()).collect::<HashSet<_>>().len(), 1100);
    // Below the minimum, 200 is used.
    let url = reqwest::Url::parse_with_params(&api.url("query"), &[("q", "SELECT Id FROM Account")]).unwrap();
    let resp =
        api.http.get(url).bearer_auth(&api.token).header("Sforce-Query-Options", "batchSize=10").send().await.unwrap();
    let (_, body) = status_json(resp).await;
    assert_eq!(body["records"].as_array().unwrap().len(), 200);
}

#[tokio::test]
async fn locators_work_under_any_version_and_can_be_reread() {
    let (_pg, api) = generated(2500).await;
    let first = api.at_version("52.0").query("SELECT Id FROM Account").await;
    let next = first["nextRecordsUrl"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/services/data/v52.0/query/"));
    let locator = next.rsplit('/').next().unwrap();
    // A client rebuilding the URL under its own version, on queryAll, or with a trailing slash.
    let (s1, a) = api.at_version("60.0").get(&format!("query/{locator}")).await;
    let (s2, b) = api.get(&format!("queryAll/{locator}/")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    let ids = |v: &Value| {
        v["records"].as_array().unwrap().iter().map(|r| r["Id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert!(a["records"][0]["attributes"]["url"].as_str().unwrap().starts_with("/services/data/v60.0/"));
    assert_eq!(a["records"].as_array().unwrap().len(), 500);
    assert_eq!(a["done"], true);
    let first_ids: HashSet<&str> =
        first["records"].as_array().unwrap().iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert!(a["records"].as_array().unwrap().iter().all(|r| !first_ids.contains(r["Id"].as_str().unwrap())));
    let (status, body) = api.get("query/01gXXXXXXXXXXXXXXX-2000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn q_with_plus_or_percent20_and_trailing_slash() {
    let (_pg, api) = generated(3).await;
    for path in [
        "query?q=SELECT+Id+FROM+Account",
        "query/?q=SELECT%20Id%20FROM%20Account",
        "query?q=SELECT+Id,+Name+FROM+Account+WHERE+Name+!=+null",
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["totalSize"], 3, "{path}");
    }
}

#[tokio::test]
async fn locators_expire_after_fifteen_idle_minutes() {
    let (pg, api) = generated(2100).await;
    let first = api.query("SELECT Id FROM Account").await;
    let next = first["nextRecordsUrl"].as_str().unwrap().to_owned();
    pg.control.advance_clock(16 * 60).await;
    let token = client_credentials(&pg).await;
    let api = Api { token: token["access_token"].as_str().unwrap().into(), ..api };
    let (status, body) = api.get(&next).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_QUERY_LOCATOR");
}
