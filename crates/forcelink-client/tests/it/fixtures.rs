//! Every recorded Salesforce answer under `shared/fixtures/salesforce/rest/` replayed by a local
//! server to the client operation that would receive it: successes parse into the client's
//! types, errors become typed errors with the recorded code and status. Also: HTML, empty and
//! truncated bodies, gzip, and redaction of tokens in error excerpts.

use std::io::Write;

use forcelink_client::{BodyKind, Client, ClientError, Page};
use serde_json::Value;

use crate::common::*;

/// The part of a fixture's request path after `/services/data/vXX.X/`.
fn data_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/services/data/")?;
    let (_version, tail) = rest.split_once('/').unwrap_or((rest, ""));
    Some(tail.trim_end_matches('/').to_owned())
}

/// Runs the client operation a fixture's request corresponds to; returns how many items the
/// success carried (records, results, entries), to compare with the recorded body.
async fn run(client: &Client, f: &Value) -> Result<usize, ClientError> {
    let req = &f["request"];
    let method = req["method"].as_str().unwrap_or("GET");
    let path = req["path"].as_str().unwrap_or("");
    let q = req["query"]["q"].as_str();
    if path == "/services/data/" {
        return Ok(client.versions().send().await?.len());
    }
    let p = data_path(path).unwrap_or_default();
    let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    let body = req["body"].clone();
    match (method, segs.as_slice()) {
        ("GET", []) => Ok(client.resources().send().await?.len()),
        ("GET", ["sobjects"]) => Ok(client.describe_global().send().await?.sobjects.len()),
        ("GET", ["sobjects", t, "describe"]) => Ok(client.sobject(t)?.describe().send().await?.fields.len()),
        ("GET", ["sobjects", t, id]) if id.len() >= 15 => {
            Ok(client.sobject(t)?.retrieve(id)?.send().await?.as_object().map_or(0, |m| m.len()))
        }
        ("GET", ["query" | "queryAll", locator]) => {
            let page = Page::<Value> {
                total_size: 0,
                done: false,
                next_records_url: Some(format!("/services/data/v26.0/query/{locator}")),
                records: Vec::new(),
            };
            Ok(page.next_page(client).await?.map_or(0, |p| p.records.len()))
        }
        ("GET", ["query"]) => Ok(client.query(q.unwrap_or_default()).send().await?.records.len()),
        ("GET", ["queryAll"]) => Ok(client.query_all(q.unwrap_or_default()).send().await?.records.len()),
        ("GET", ["search"]) => Ok(client.search(q.unwrap_or_default()).send().await?.len()),
        ("GET", ["limits"]) => Ok(client.limits().send().await?.len()),
        ("POST", ["composite", "sobjects"]) => {
            let records = body["records"].as_array().cloned().unwrap_or_default();
            let n = records.len();
            let results = client.collections().create("Account", records).send().await?;
            assert_eq!(results.len(), n);
            Ok(results.len())
        }
        ("PATCH", ["composite", "sobjects", t, field]) => {
            // The source did not record the request body: one record per recorded result.
            let n = f["response"]["body"].as_array().map_or(0, Vec::len);
            let records =
                body["records"].as_array().cloned().unwrap_or_else(|| vec![serde_json::json!({"Name": "x"}); n]);
            Ok(client.collections().upsert(t, field, records).send().await?.len())
        }
        ("POST", ["composite"]) => {
            let subs: Vec<forcelink_client::composite::CompositeSubrequest> =
                serde_json::from_value(body["compositeRequest"].clone()).unwrap();
            let b = subs.into_iter().fold(client.composite(), |b, s| b.request(s));
            Ok(b.send().await?.composite_response.len())
        }
        ("POST", ["sobjects", t]) | ("POST", [t]) => {
            let t = if t.starts_with('v') { "Account" } else { t };
            client.sobject(t)?.create(&body).send().await.map(|_| 1)
        }
        ("PATCH", ["sobjects", t, field, value]) => {
            client.sobject(t)?.upsert(field, value, &body)?.send().await.map(|_| 1)
        }
        ("PATCH", ["sobjects", t, id]) => client.sobject(t)?.update(id, &body)?.send().await.map(|_| 0),
        ("DELETE", ["sobjects", t, id]) => client.sobject(t)?.delete(id)?.send().await.map(|_| 0),
        // Resources without a builder of their own go through the raw request.
        (m, _) => {
            let mut r = client.request(m.parse().unwrap(), path);
            if let Some(obj) = req["query"].as_object() {
                for (k, v) in obj {
                    r = r.query(k, v.as_str().unwrap_or_default());
                }
            }
            if !body.is_null() {
                r = r.json(&body);
            }
            let v: Value = r.send().await?.json()?;
            Ok(match &v {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                _ => 1,
            })
        }
    }
}

/// Items in a recorded success body, counted the way [`run`] counts them.
fn recorded_items(f: &Value) -> Option<usize> {
    let b = &f["response"]["body"];
    let path = f["request"]["path"].as_str().unwrap_or("");
    let p = data_path(path).unwrap_or_default();
    Some(match b {
        Value::Array(a) => a.len(),
        Value::Object(o) if o.contains_key("records") => o["records"].as_array()?.len(),
        Value::Object(o) if o.contains_key("sobjects") => o["sobjects"].as_array()?.len(),
        Value::Object(o) if o.contains_key("fields") && p.ends_with("describe") => o["fields"].as_array()?.len(),
        Value::Object(o) if o.contains_key("compositeResponse") => o["compositeResponse"].as_array()?.len(),
        Value::Object(o) => o.len(),
        _ => return None,
    })
}

#[tokio::test]
async fn every_recorded_rest_answer_parses_into_the_clients_types() {
    let dir = forcelink_test_support::fixtures_dir().join("rest");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 40, "only {} fixtures in {}", names.len(), dir.display());
    let mut checked = 0;
    for name in names {
        let f = forcelink_test_support::fixture(&format!("rest/{name}"));
        let canned = Canned::from_fixture(&f);
        let server = replay(vec![canned.clone()]).await;
        let (client, _) = replay_client(&server);
        let outcome = run(&client, &f).await;
        let recorded = &f["response"]["body"];
        let is_error_envelope = recorded[0].get("errorCode").is_some();
        match outcome {
            Err(ClientError::Api { error, .. }) => {
                assert!(is_error_envelope, "{name}: unexpected API error {error}");
                assert_eq!(error.error_code, recorded[0]["errorCode"], "{name}");
                assert_eq!(error.message, recorded[0]["message"], "{name}");
                assert_eq!(error.status, canned.status, "{name}");
            }
            Err(ClientError::UnexpectedResponse { kind: BodyKind::Html, status, excerpt, .. }) => {
                assert_eq!(name, "error_html_page_404");
                assert_eq!(status, 404);
                assert!(excerpt.contains("Error Page"), "{excerpt}");
            }
            Err(ClientError::MultipleMatches { urls, .. }) => {
                assert_eq!(name, "upsert_multiple_matches_300");
                assert_eq!(urls.len(), 2);
            }
            Err(e) => panic!("{name}: {e:?}"),
            Ok(items) => {
                assert!(!is_error_envelope && canned.status < 300, "{name}: an error answer was accepted");
                if let Some(n) = recorded_items(&f)
                    && !["create", "upsert_created"].iter().any(|p| name.starts_with(p))
                {
                    assert_eq!(items, n, "{name}: item count");
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 40);
}

#[tokio::test]
async fn html_empty_and_truncated_bodies_are_typed_errors_with_redacted_excerpts() {
    let cases: Vec<(u16, &str, &str, BodyKind)> = vec![
        (200, "text/html", "<html><body>Maintenance</body></html>", BodyKind::Html),
        (200, "application/json", "", BodyKind::Empty),
        (
            200,
            "application/json",
            r#"{"totalSize":2,"done":true,"records":[{"Id":"00D8d0000000001!AQ4secret"#,
            BodyKind::Malformed,
        ),
        (400, "application/json", "", BodyKind::Empty),
        (400, "application/json", r#"{"unexpected":"00D8d0000000001!AQ4secretxyz"}"#, BodyKind::Shape(String::new())),
    ];
    for (status, ct, body, kind) in cases {
        let server = replay(vec![Canned {
            status,
            headers: vec![("content-type".into(), ct.into())],
            body: body.as_bytes().to_vec(),
        }])
        .await;
        let (client, _) = replay_client(&server);
        let err = client.query("SELECT Id FROM Account").send().await.unwrap_err();
        let ClientError::UnexpectedResponse { status: s, kind: k, excerpt, .. } = &err else { panic!("{err:?}") };
        assert_eq!(*s, status);
        assert_eq!(std::mem::discriminant(k), std::mem::discriminant(&kind), "{err}");
        assert!(!excerpt.contains("AQ4secret"), "token leaked: {excerpt}");
        assert!(!err.to_string().contains("AQ4secret"));
    }
}

#[tokio::test]
async fn gzip_is_accepted_and_decoded() {
    let page = br#"{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Account"},"Name":"Zipped"}]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(page).unwrap();
    let server = replay(vec![Canned {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into()), ("content-encoding".into(), "gzip".into())],
        body: gz.finish().unwrap(),
    }])
    .await;
    let (client, _) = replay_client(&server);
    let p = client.query("SELECT Name FROM Account").send().await.unwrap();
    assert_eq!(p.records[0]["Name"], "Zipped");
    let seen = server.seen.lock().unwrap();
    let ae = seen[0].headers.get("accept-encoding").unwrap().to_str().unwrap();
    assert!(ae.contains("gzip"), "{ae}");
    assert_eq!(seen[0].headers.get("authorization").unwrap(), "Bearer 00D000000000001!fixedtokenvalue");
}
