//! The MCP server with a client we did not write: the official MCP Python SDK (`mcp` on PyPI,
//! installed by `scripts/python-tools-setup`) runs `mcp_client.py` against brokers on real
//! sockets over an in-process playground. It initializes, lists and runs every tool, reads
//! resources and prompts, and is refused where it must be (no `mcp` scope, another connection,
//! a read-only key writing, over the call budget). This side then checks that no result holds
//! a token, a secret or a key, and that the audit log has every call.

use std::sync::Arc;

use forcelink_auth::{ConnectionId, SystemClock};
use forcelink_broker::{BrokerConfig, BrokerState};
use forcelink_store::{ConnectionStore, MemoryConnectionStore, PutMode, SecretResolver};
use forcelink_test_support::spawn_playground_with;
use serde_json::{Value, json};

use crate::{add_key, add_read_only_key, client_credentials, serve, transport};

const TOOLS: [&str; 19] = [
    "list_connections",
    "soql_query",
    "sosl_search",
    "list_sobjects",
    "describe_sobject",
    "get_record",
    "create_record",
    "update_record",
    "delete_record",
    "limits",
    "create_user",
    "update_user",
    "activate_user",
    "deactivate_user",
    "freeze_user",
    "unfreeze_user",
    "remove_user_entitlements",
    "reset_password",
    "upload_document",
];

fn actor(key: &str) -> String {
    format!("api-key:{}", forcelink_store::apikey::parse(key).unwrap().0)
}

/// Whether `text` holds something shaped like a Salesforce session id (`00D` + 12 to 15
/// letters or digits + `!`).
fn has_session_id(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(3)).any(|i| {
        b[i..].starts_with(b"00D") && {
            let n = b[i + 3..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
            (12..=15).contains(&n) && b.get(i + 3 + n) == Some(&b'!')
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_the_official_sdk_runs_every_tool_of_its_connection_and_nothing_else() {
    // 450 accounts: enough for a query to have a second page.
    let pg = spawn_playground_with(|c| c.generate = vec![("Account".to_owned(), 450)]).await;
    let store: Arc<dyn ConnectionStore> = Arc::new(MemoryConnectionStore::new(Arc::new(SystemClock)));
    store.put_connection(&ConnectionId::new("pg"), &client_credentials(&pg), PutMode::Create).await.unwrap();
    let admin = add_key(&*store, &["*"], &["*"]).await;
    let agent = add_key(&*store, &["pg"], &["mcp"]).await;
    let no_mcp = add_key(&*store, &["pg"], &["token", "proxy", "actions", "admin"]).await;
    let other = add_key(&*store, &["other"], &["mcp"]).await;
    let reader = add_read_only_key(&*store, &["pg"], &["mcp"]).await;

    let state = BrokerState::new(BrokerConfig::new(store.clone(), transport(), SecretResolver::without_env())).unwrap();
    let (url, _server) = serve(state.clone()).await;
    // A second broker on the same store with a budget of 3 calls a minute per key.
    let mut tight = BrokerConfig::new(store.clone(), transport(), SecretResolver::without_env());
    tight.limits.mcp_calls_per_minute = 3;
    let rate_state = BrokerState::new(tight).unwrap();
    let (rate_url, _rate_server) = serve(rate_state.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let cfg = json!({
        "url": format!("{url}/mcp"), "rate_url": format!("{rate_url}/mcp"), "connection": "pg",
        "user": "sam.standard@playground.forcelink.dev",
        "keys": {"agent": agent, "reader": reader, "no_mcp": no_mcp, "other": other},
    });
    std::fs::write(&config, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/mcp_client.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(&config)
            .output()
            .unwrap_or_else(|e| panic!("python3 could not be started ({e}); run scripts/python-tools-setup"))
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the MCP Python SDK run failed (is `mcp` installed? run scripts/python-tools-setup)\n{stderr}"
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ran: std::collections::BTreeSet<&str> = results.iter().filter_map(|r| r["tool"].as_str()).collect();
    for tool in TOOLS {
        assert!(ran.contains(tool), "{tool} was not run");
    }

    // No result holds a token, a secret, a key or a session id.
    let tokens = store.load(&ConnectionId::new("pg")).await.unwrap().expect("the connection signed in");
    let mut secrets = vec![tokens.set.access_token.secret().to_owned(), pg.info.client.client_secret.clone()];
    if let Some(refresh) = &tokens.set.refresh_token {
        secrets.push(refresh.secret().to_owned());
    }
    secrets.extend([admin.clone(), agent.clone(), no_mcp.clone(), other.clone(), reader.clone()]);
    for result in &results {
        let text = result.to_string();
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret in the {} result", result["tool"]);
        }
        assert!(!has_session_id(&text), "a session id in the {} result: {text}", result["tool"]);
    }

    // Every call is in the audit log: tool, connection, key, outcome.
    state.flush_audit().await;
    rate_state.flush_audit().await;
    let log = store.audit(None, 10_000).await.unwrap();
    let entry = |who: &str, action: &str, detail: &str| {
        log.iter().find(|e| {
            e.actor == actor(who) && e.action == action && e.detail.as_deref().is_some_and(|d| d.contains(detail))
        })
    };
    for tool in TOOLS {
        let e = entry(&agent, &format!("mcp.{tool}"), "ok").unwrap_or_else(|| panic!("no audit entry for {tool}"));
        let expected = if tool == "list_connections" { "*" } else { "pg" };
        assert_eq!(e.connection.as_str(), expected, "{tool}");
    }
    assert!(entry(&agent, "mcp.get_record", "refused: invalid arguments").is_some());
    assert!(entry(&reader, "mcp.create_record", "refused: read-only key").is_some());
    assert!(entry(&reader, "mcp.limits", "ok").is_some());
    assert!(entry(&other, "mcp.soql_query", "refused: connection \"pg\"").is_some());
    assert!(entry(&agent, "key.refused", "mcp rate limit: list_connections").is_some());
    assert!(entry(&no_mcp, "key.refused", "forbidden: mcp").is_some());
}

/// The route itself: the key is checked before the body is read (401 without one, 403 without
/// the `mcp` scope); only POST is served (no GET stream, no session to DELETE); an initialize
/// through any host name gets a JSON answer naming the server, with no session id.
#[tokio::test]
async fn the_mcp_route_checks_the_key_first_and_answers_json_without_a_session() {
    let h = crate::harness().await;
    let agent = add_key(&*h.store, &["pg"], &["mcp"]).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
    .to_string();
    let send = |method: &str, key: Option<&str>| {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri("/mcp")
            // Any host name: the key, not the Host header, is what guards the route.
            .header("host", "broker.example.com")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        req.body(axum::body::Body::from(init.clone())).unwrap()
    };
    use tower::ServiceExt;
    let status = |r: axum::response::Response| r.status().as_u16();
    assert_eq!(status(h.router.clone().oneshot(send("POST", None)).await.unwrap()), 401);
    assert_eq!(status(h.router.clone().oneshot(send("POST", Some(&h.token_key))).await.unwrap()), 403);
    // A key with every scope has `mcp`.
    assert_eq!(status(h.router.clone().oneshot(send("POST", Some(&h.admin))).await.unwrap()), 200);
    for method in ["GET", "DELETE"] {
        assert_eq!(status(h.router.clone().oneshot(send(method, Some(&agent))).await.unwrap()), 405, "{method}");
    }
    let answer = h.router.clone().oneshot(send("POST", Some(&agent))).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("mcp-session-id").is_none(), "stateless: no session");
    assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    use http_body_util::BodyExt;
    let body: Value = serde_json::from_slice(&answer.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["result"]["serverInfo"]["name"], "forcelink", "{body}");
    assert!(body["result"]["capabilities"]["tools"].is_object(), "{body}");
}
