//! API keys over the API: who may manage them, what a new key may hold, revocation at once.

use axum::http::StatusCode;
use serde_json::json;

use crate::{call, harness};

#[tokio::test]
async fn an_all_connections_admin_creates_lists_and_revokes_keys() {
    let h = harness().await;
    let r = &h.router;
    let body = json!({ "name": "ci", "connections": ["pg"], "scopes": ["token"] }).to_string();
    let (s, created) = call(r, "POST", "/v1/api-keys", Some(&h.admin), Some(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("flk_{id}_")), "{created}");
    assert_eq!(created["scopes"], json!(["token"]));
    assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some(&key), None).await.0, StatusCode::OK);
    // The list shows no secret and no hash.
    let (s, list) = call(r, "GET", "/v1/api-keys", Some(&h.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    let text = list.to_string();
    let secret = key.rsplit('_').next().unwrap();
    assert!(!text.contains(secret) && !text.contains("secret_hash") && !text.contains("\"key\""), "{text}");
    assert!(list["api_keys"].as_array().unwrap().iter().any(|k| k["id"] == id.as_str()));
    // Revoked: refused at once on this broker, although the key was verified a moment ago.
    let (s, out) = call(r, "DELETE", &format!("/v1/api-keys/{id}"), Some(&h.admin), None).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some(&key), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(r, "DELETE", "/v1/api-keys/nosuchkey", Some(&h.admin), None).await.0, StatusCode::NOT_FOUND);
    let audit = h.store.audit(None, 50).await.unwrap();
    for action in ["api-key.created", "api-key.revoked"] {
        assert!(audit.iter().any(|e| e.action == action && e.detail.as_deref().unwrap().contains(&id)), "{audit:?}");
    }
    assert!(!format!("{audit:?}").contains(secret));
}

#[tokio::test]
async fn only_keys_on_every_connection_manage_keys_and_never_beyond_their_own_scopes() {
    let h = harness().await;
    let r = &h.router;
    let body = json!({ "name": "x", "connections": ["*"], "scopes": ["*"] }).to_string();
    // Every scope but only on `other`; admin on `pg` only: neither manages keys.
    let pg_admin = crate::add_key(&*h.store, &["pg"], &["admin"]).await;
    for key in [&h.other_key, &pg_admin, &h.token_key] {
        assert_eq!(call(r, "POST", "/v1/api-keys", Some(key), Some(&body)).await.0, StatusCode::FORBIDDEN);
        assert_eq!(call(r, "GET", "/v1/api-keys", Some(key), None).await.0, StatusCode::FORBIDDEN);
        assert_eq!(call(r, "DELETE", "/v1/api-keys/abc", Some(key), None).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(call(r, "GET", "/v1/api-keys", None, None).await.0, StatusCode::UNAUTHORIZED);
    // An admin on every connection without the other scopes cannot mint them.
    let limited = crate::add_key(&*h.store, &["*"], &["admin"]).await;
    let (s, err) = call(r, "POST", "/v1/api-keys", Some(&limited), Some(&body)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{err}");
    let wider = json!({ "name": "x", "connections": ["pg"], "scopes": ["token"] }).to_string();
    assert_eq!(call(r, "POST", "/v1/api-keys", Some(&limited), Some(&wider)).await.0, StatusCode::FORBIDDEN);
    let same = json!({ "name": "x", "connections": ["pg"], "scopes": ["admin"] }).to_string();
    assert_eq!(call(r, "POST", "/v1/api-keys", Some(&limited), Some(&same)).await.0, StatusCode::CREATED);
    // Bad definitions: 400 that says why, nothing stored.
    let before = h.store.api_keys().await.unwrap().len();
    for (bad, says) in [
        (json!({ "name": "", "connections": ["pg"], "scopes": ["token"] }), "name"),
        (json!({ "name": "x", "connections": [], "scopes": ["token"] }), "connections"),
        (json!({ "name": "x", "connections": ["../x"], "scopes": ["token"] }), "connections"),
        (json!({ "name": "x", "connections": ["pg"], "scopes": ["tokens"] }), "unknown scope"),
        (json!({ "name": "x", "connections": ["pg"], "scopes": [] }), "scopes"),
        (json!({ "name": "x", "connections": ["pg"], "scopes": ["token"], "extra": 1 }), "unknown field"),
    ] {
        let (s, err) = call(r, "POST", "/v1/api-keys", Some(&h.admin), Some(&bad.to_string())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(says), "{bad}: {err}");
    }
    assert_eq!(h.store.api_keys().await.unwrap().len(), before);
}

/// A read-only key (made over the API) reads and never writes: `GET`s pass, writes, actions and
/// token hand-outs are refused with a 403 that says why (the page refuses it too: `web`).
#[tokio::test]
async fn a_read_only_key_reads_and_is_refused_writes_and_tokens() {
    let h = harness().await;
    let r = &h.router;
    let body = json!({ "name": "reader", "connections": ["*"], "scopes": ["*"], "read_only": true }).to_string();
    let (s, created) = call(r, "POST", "/v1/api-keys", Some(&h.admin), Some(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["read_only"], true);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();

    // Reads pass.
    assert_eq!(call(r, "GET", "/v1/connections/pg", Some(&key), None).await.0, StatusCode::OK);
    let limits = "/v1/connections/pg/sf/services/data/v64.0/limits";
    assert_eq!(call(r, "GET", limits, Some(&key), None).await.0, StatusCode::OK);
    // Writes, actions and tokens do not, whatever the scopes.
    let account = "/v1/connections/pg/sf/services/data/v64.0/sobjects/Account";
    let refused = [
        ("POST", account, Some(r#"{"Name":"x"}"#)),
        ("POST", "/v1/connections/pg/actions/freeze-user", Some(r#"{"user":"sam.standard@playground.forcelink.dev"}"#)),
        ("GET", "/v1/connections/pg/token", None),
        ("DELETE", "/v1/connections/pg", None),
        ("POST", "/v1/api-keys", Some(r#"{"name":"x","connections":["pg"],"scopes":["token"]}"#)),
    ];
    for (method, path, body) in refused {
        let (s, err) = call(r, method, path, Some(&key), body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {err}");
        assert_eq!(err["error"]["code"], "read_only", "{method} {path}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains("--read-only"), "{err}");
    }
    assert!(h.store.connection(&forcelink_auth::ConnectionId::new("pg")).await.unwrap().is_some(), "nothing deleted");
    let (_, list) = call(r, "GET", "/v1/api-keys", Some(&h.admin), None).await;
    let listed = list["api_keys"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
    assert_eq!(listed["read_only"], true);
    assert!(list["api_keys"].as_array().unwrap().iter().any(|k| k["read_only"] == false));
    let audit = h.store.audit(None, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "api-key.created" && e.detail.as_deref().unwrap().contains("read-only")));
    h.state.flush_audit().await;
    let audit = h.store.audit(None, 100).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "key.refused" && e.detail.as_deref().unwrap().contains("read-only key")));
}
