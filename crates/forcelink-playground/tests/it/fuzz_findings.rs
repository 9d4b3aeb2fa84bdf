//! Inputs the fuzz targets in `fuzz/` found, kept as regression tests (issue 23).

use reqwest::StatusCode;

use crate::common::*;

/// `playground_soql`: each `(` (or `NOT`, or subquery) was one more level of recursion in the
/// parser, which runs on a blocking thread with a small stack: a query of a few kilobytes
/// overflowed it and the whole playground died. Nesting is now bounded, and refused in words.
#[tokio::test]
async fn issue_23_deeply_nested_queries_are_refused_and_the_org_keeps_answering() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    let parens = format!("SELECT Id FROM Account WHERE {}Name = 'x'{}", "(".repeat(5000), ")".repeat(5000));
    let nots = format!("SELECT Id FROM Account WHERE {}Name = 'x'", "NOT ".repeat(10_000));
    for q in [parens, nots] {
        let (status, body) = api.query_status(&q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY", "{body}");
        assert!(body[0]["message"].as_str().unwrap().contains("nests more than 64 levels"), "{body}");
    }
    // Nesting as deep as real queries go still works.
    let q = format!("SELECT Id FROM Account WHERE {}Name != 'x'{}", "(".repeat(40), ")".repeat(40));
    api.query(&q).await;
    let q = "SELECT Id, (SELECT Id FROM Contacts WHERE NOT (NOT (LastName = 'x'))) FROM Account";
    api.query(q).await;
}

/// `playground_soql`: semi-joins nested in semi-joins compiled to SQL deeper than SQLite allows
/// (an internal error, 500). Salesforce takes no semi-join inside another: refused as malformed.
#[tokio::test]
async fn issue_23_a_semi_join_inside_a_semi_join_is_malformed_not_an_internal_error() {
    let pg = spawn_playground().await;
    let api = admin_api(&pg).await;
    for nested in [2, 40] {
        let mut inner = "SELECT AccountId FROM Contact".to_owned();
        for _ in 1..nested {
            inner = format!("SELECT Id FROM Account WHERE Id IN ({inner})");
        }
        let q = format!("SELECT Id FROM Account WHERE Id IN ({inner})");
        let (status, body) = api.query_status(&q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY", "{body}");
        assert!(body[0]["message"].as_str().unwrap().contains("cannot be nested"), "{body}");
    }
    // One semi-join, and two side by side, still work.
    api.query("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)").await;
    api.query(
        "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact) AND Id NOT IN (SELECT AccountId FROM Opportunity)",
    )
    .await;
}
