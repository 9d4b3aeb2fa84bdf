use axum::http::StatusCode;
use serde_json::json;

use crate::{call, harness};

#[tokio::test]
async fn keys_are_checked_for_presence_scope_and_connection() {
    let h = harness().await;
    let r = &h.router;
    let (s, body) = call(r, "GET", "/v1/connections/pg/token", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let forged = format!("{}x", &h.token_key[..h.token_key.len() - 1]);
    assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some(&forged), None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some("flk_garbage"), None).await.0, StatusCode::UNAUTHORIZED);
    // Right connection, wrong scope; right scope, wrong connection.
    let (s, body) = call(r, "GET", "/v1/connections/pg/token", Some(&h.proxy_key), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some(&h.other_key), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(r, "GET", "/v1/connections", Some(&h.token_key), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(r, "GET", "/metrics", Some(&h.token_key), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some(&h.token_key), None).await.0, StatusCode::OK);
    // A revoked key stops working (the broker trusts a verified key for at most a few seconds,
    // so revoke before its first use here).
    let revoked = crate::add_key(&*h.store, &["pg"], &["token"]).await;
    let id = forcelink_store::apikey::parse(&revoked).unwrap().0.to_owned();
    h.store.revoke_api_key(&id, forcelink_auth::Clock::now(&forcelink_auth::SystemClock)).await.unwrap();
    assert_eq!(call(r, "GET", "/v1/connections/pg/token", Some(&revoked), None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_hand_out_has_the_documented_shape_works_at_the_org_and_is_audited() {
    let h = harness().await;
    let (s, body) = call(&h.router, "GET", "/v1/connections/pg/token", Some(&h.token_key), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for field in ["access_token", "instance_url", "token_type", "issued_at", "expires_at"] {
        assert!(body[field].is_string(), "{field} in {body}");
    }
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], h.pg.instance_url());
    let token = body["access_token"].as_str().unwrap();
    let status = reqwest::Client::new()
        .get(format!("{}/services/data/v64.0/limits", h.pg.instance_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    // The second hand-out comes from memory: still one token request at the org.
    let (_, again) = call(&h.router, "GET", "/v1/connections/pg/token", Some(&h.token_key), None).await;
    assert_eq!(again["access_token"], body["access_token"]);
    assert_eq!(h.pg.control.token_requests("client_credentials").await, 1);
    h.state.flush_audit().await;
    let audit = h.store.audit(Some(&forcelink_auth::ConnectionId::new("pg")), 10).await.unwrap();
    let issued: Vec<_> = audit.iter().filter(|e| e.action == "token.issued").collect();
    assert_eq!(issued.len(), 1, "{audit:?}");
    let key_id = forcelink_store::apikey::parse(&h.token_key).unwrap().0;
    assert_eq!(issued[0].actor, format!("api-key:{key_id}"));
    let detail = issued[0].detail.as_deref().unwrap();
    assert!(detail.ends_with("handed out 2 times") && !detail.contains(token), "{detail}");
}

#[tokio::test]
async fn connections_crud_keeps_secrets_write_only() {
    let h = harness().await;
    let r = &h.router;
    let secret = "s3cr3t-value-never-shown";
    let body = json!({
        "name": "cc2", "method": "client-credentials", "environment": "custom",
        "login_url": h.pg.instance_url(), "client_id": h.pg.info.client.client_id, "client_secret": secret,
    })
    .to_string();
    let (s, created) = call(r, "POST", "/v1/connections", Some(&h.admin), Some(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["settings"]["client_secret"], "[stored]");
    assert_eq!(call(r, "POST", "/v1/connections", Some(&h.admin), Some(&body)).await.0, StatusCode::CONFLICT);
    let (_, list) = call(r, "GET", "/v1/connections", Some(&h.admin), None).await;
    let names: Vec<_> = list["connections"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("cc2"), json!("pg")]);
    assert!(!list.to_string().contains(secret) && !list.to_string().contains(&h.pg.info.client.client_secret));
    // A key limited to another connection sees none of these.
    let (_, limited) = call(r, "GET", "/v1/connections", Some(&h.other_key), None).await;
    assert_eq!(limited["connections"], json!([]));
    // The wrong secret fails the test; PUT without the secret keeps the stored one.
    let (s, tested) = call(r, "POST", "/v1/connections/cc2/test", Some(&h.admin), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{tested}");
    let fix = json!({ "method": "client-credentials", "environment": "custom", "login_url": h.pg.instance_url(),
        "client_id": h.pg.info.client.client_id, "client_secret": h.pg.info.client.client_secret })
    .to_string();
    assert_eq!(call(r, "PUT", "/v1/connections/cc2", Some(&h.admin), Some(&fix)).await.0, StatusCode::OK);
    let keep = json!({ "method": "client-credentials", "environment": "custom", "login_url": h.pg.instance_url(),
        "client_id": h.pg.info.client.client_id, "api_version": "63.0" })
    .to_string();
    let (s, shown) = call(r, "PUT", "/v1/connections/cc2", Some(&h.admin), Some(&keep)).await;
    assert_eq!(s, StatusCode::OK, "{shown}");
    assert_eq!(shown["settings"]["client_secret"], "[stored]");
    let (s, tested) = call(r, "POST", "/v1/connections/cc2/test", Some(&h.admin), None).await;
    assert_eq!((s, tested["ok"].clone()), (StatusCode::OK, json!(true)), "{tested}");
    assert_eq!(tested["api_version"], "63.0");
    let (s, deleted) = call(r, "DELETE", "/v1/connections/cc2", Some(&h.admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(deleted["revoked"], true, "{deleted}");
    assert_eq!(call(r, "GET", "/v1/connections/cc2", Some(&h.admin), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(r, "GET", "/v1/connections/cc2/token", Some(&h.admin), None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_gets_a_400_that_says_why_and_saves_nothing() {
    let h = harness().await;
    let r = &h.router;
    let cases = [
        ("{\"name\": ", "not valid JSON"),
        ("", "needs a JSON body"),
        ("[1]", "must be a JSON object"),
        ("{\"method\": \"jwt\"}", "needs a `name`"),
        ("{\"name\": \"../x\", \"method\": \"jwt\"}", "is not valid"),
        ("{\"name\": \"x\", \"method\": \"client-credentials\", \"client_secret\": \"env:HOME\"}", "not env:/file:"),
        ("{\"name\": \"x\", \"methd\": \"jwt\"}", "unknown field"),
        ("{\"name\": \"x\", \"method\": \"jwt\"}", "client_id"),
    ];
    for (body, says) in cases {
        let (s, err) = call(r, "POST", "/v1/connections", Some(&h.admin), Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error"]["code"], "bad_request");
        assert!(err["error"]["message"].as_str().unwrap().contains(says), "{body}: {err}");
    }
    assert_eq!(h.store.connections().await.unwrap().len(), 1);
    let (s, err) = call(r, "POST", "/v1/connections/pg/actions/freeze-user", Some(&h.admin), Some("{oops")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
    let (s, _) = call(r, "POST", "/v1/connections/pg/actions/no-such-action", Some(&h.admin), Some("{}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn actions_run_through_the_connection() {
    let h = harness().await;
    let (s, out) = call(
        &h.router,
        "POST",
        "/v1/connections/pg/actions/freeze-user",
        Some(&h.admin),
        Some(r#"{"user": "sam.standard@playground.forcelink.dev"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert!(out.is_object(), "{out}");
    // The action's scope is needed.
    let (s, _) =
        call(&h.router, "POST", "/v1/connections/pg/actions/freeze-user", Some(&h.token_key), Some("{}")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let h = harness().await;
    let r = &h.router;
    assert_eq!(call(r, "GET", "/healthz", None, None).await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(call(r, "GET", "/readyz", None, None).await.1["status"], "ready");
    call(r, "GET", "/v1/connections/pg/token", Some(&h.token_key), None).await;
    call(r, "GET", "/v1/connections/pg/token", Some(&h.token_key), None).await;
    let (_, _) = call(r, "GET", "/v1/connections/pg/sf/services/data/", Some(&h.admin), None).await;
    let resp = reqwest_free_metrics(r, &h.admin).await;
    for line in [
        "forcelink_token_renewals_total{connection=\"pg\"} 1",
        "forcelink_tokens_handed_out_total{connection=\"pg\"} 2",
        "forcelink_proxy_requests_total{connection=\"pg\"} 1",
        "forcelink_proxy_latency_seconds_count{connection=\"pg\"} 1",
        "# TYPE forcelink_proxy_latency_seconds histogram",
    ] {
        assert!(resp.contains(line), "{line} in\n{resp}");
    }
    let hits: u64 = resp
        .lines()
        .find_map(|l| l.strip_prefix("forcelink_token_cache_hits_total{connection=\"pg\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(hits >= 2, "{resp}");
    let (s, doc) = call(r, "GET", "/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, forcelink_broker::openapi_document(), "the served document is the generated one");
    assert!(doc["paths"]["/v1/connections/{name}/token"]["get"]["security"].is_array());
    assert!(doc["paths"]["/v1/connections/{name}/sf/{path}"]["patch"].is_object());
    assert!(doc["paths"].get("/login").is_none());
    // Answers carry the schemas of the types the handlers return.
    let ok = |path: &str, method: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"].clone()
    };
    assert_eq!(ok("/healthz", "get", "200"), "#/components/schemas/Status");
    assert_eq!(ok("/v1/connections/{name}/token", "get", "200"), "#/components/schemas/TokenAnswer");
    assert_eq!(ok("/v1/connections", "post", "201"), "#/components/schemas/ConnectionView");
    assert_eq!(ok("/v1/api-keys", "post", "201"), "#/components/schemas/CreatedApiKey");
    assert_eq!(ok("/v1/api-keys", "get", "401"), "#/components/schemas/ErrorBody");
    // What the handlers send matches those schemas (spot checks of the field sets).
    let (_, health) = call(r, "GET", "/healthz", None, None).await;
    let status_schema = &doc["components"]["schemas"]["Status"];
    for field in health.as_object().unwrap().keys() {
        assert!(status_schema["properties"][field].is_object(), "{field} not in {status_schema}");
    }
}

async fn reqwest_free_metrics(router: &axum::Router, key: &str) -> String {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::get("/metrics")
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn metrics_need_a_key_on_every_connection_and_refusals_are_counted_not_logged_one_by_one() {
    let h = harness().await;
    let r = &h.router;
    // `other_key` holds every scope but only for `other`: not enough for the metrics.
    let (s, body) = call(r, "GET", "/metrics", Some(&h.other_key), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let pg_admin = crate::add_key(&*h.store, &["pg"], &["admin"]).await;
    assert_eq!(call(r, "GET", "/metrics", Some(&pg_admin), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(r, "GET", "/metrics", Some(&h.admin), None).await.0, StatusCode::OK);
    // A connection named in the body is checked against the key too.
    let body = json!({ "name": "elsewhere", "method": "access-token", "instance_url": h.pg.instance_url(),
        "access_token": "x" })
    .to_string();
    assert_eq!(call(r, "POST", "/v1/connections", Some(&pg_admin), Some(&body)).await.0, StatusCode::FORBIDDEN);
    // A flood of refusals becomes a few counted entries.
    for _ in 0..50 {
        call(r, "GET", "/v1/connections/pg/token", None, None).await;
        call(r, "GET", "/v1/connections/pg/token", Some("flk_garbage"), None).await;
        call(r, "GET", "/v1/connections/pg/token", Some(&h.proxy_key), None).await;
    }
    h.state.flush_audit().await;
    let audit = h.store.audit(None, 100).await.unwrap();
    let refused: Vec<_> = audit.iter().filter(|e| e.action == "key.refused").collect();
    let proxy_id = forcelink_store::apikey::parse(&h.proxy_key).unwrap().0;
    let find = |actor: &str| refused.iter().find(|e| e.actor == actor).map(|e| e.detail.clone().unwrap());
    assert!(find("anonymous").unwrap().ends_with("(50 times)"), "{refused:?}");
    assert!(find("unknown").unwrap().ends_with("(50 times)"), "{refused:?}");
    let forbidden = find(&format!("api-key:{proxy_id}")).unwrap();
    assert!(forbidden.starts_with("forbidden: token on \"pg\"") && forbidden.ends_with("(50 times)"), "{forbidden}");
    assert!(refused.len() <= 6, "{refused:?}");
    assert!(!format!("{refused:?}").contains(&h.proxy_key));
}

#[tokio::test]
async fn connection_edits_are_audited_with_the_names_of_changed_fields_only() {
    let h = harness().await;
    let r = &h.router;
    let new_secret = "another-secret-value";
    let body = json!({ "method": "client-credentials", "environment": "custom", "login_url": h.pg.instance_url(),
        "client_id": h.pg.info.client.client_id, "client_secret": new_secret, "api_version": "62.0" })
    .to_string();
    let (s, out) = call(r, "PUT", "/v1/connections/pg", Some(&h.admin), Some(&body)).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let audit = h.store.audit(Some(&forcelink_auth::ConnectionId::new("pg")), 10).await.unwrap();
    let updated = audit.iter().find(|e| e.action == "connection.updated").unwrap();
    assert_eq!(updated.detail.as_deref(), Some("changed: api_version, client_secret"));
    assert!(!format!("{audit:?}").contains(new_secret));
}

#[tokio::test]
async fn the_pubsub_endpoint_is_a_setting_checked_like_the_urls_and_moving_it_needs_the_secrets() {
    let h = harness().await;
    let r = &h.router;
    let endpoint = h.pg.info.pubsub_endpoint.clone();
    let base = json!({
        "name": "events", "method": "client-credentials", "environment": "custom",
        "login_url": h.pg.instance_url(), "client_id": h.pg.info.client.client_id,
        "client_secret": h.pg.info.client.client_secret,
    });
    let with = |value: &str| {
        let mut b = base.clone();
        b["pubsub_endpoint"] = json!(value);
        b
    };
    for (value, says) in [
        ("not-host-port", "host:port"),
        ("https://x.example:1", "host:port"),
        ("pubsub.evil.example:7443", "--allow-origin"),
    ] {
        let (s, err) = call(r, "POST", "/v1/connections", Some(&h.admin), Some(&with(value).to_string())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{value}: {err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains("pubsub_endpoint") && message.contains(says), "{value}: {message}");
    }
    let (s, created) = call(r, "POST", "/v1/connections", Some(&h.admin), Some(&with(&endpoint).to_string())).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["settings"]["pubsub_endpoint"], endpoint.as_str());
    let (_, shown) = call(r, "GET", "/v1/connections/events", Some(&h.admin), None).await;
    assert_eq!(shown["settings"]["pubsub_endpoint"], endpoint.as_str());
    let stored = h.store.connection(&forcelink_auth::ConnectionId::new("events")).await.unwrap().unwrap();
    assert_eq!(stored.spec.pubsub_endpoint.as_deref(), Some(endpoint.as_str()));

    // Tokens are sent there: moving it without the secret is refused, with it accepted.
    let mut moved = with("127.0.0.1:9");
    moved.as_object_mut().unwrap().remove("client_secret");
    let (s, refused) = call(r, "PUT", "/v1/connections/events", Some(&h.admin), Some(&moved.to_string())).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "secrets_required");
    assert!(refused["error"]["message"].as_str().unwrap().contains("pubsub_endpoint"), "{refused}");
    let (s, edited) =
        call(r, "PUT", "/v1/connections/events", Some(&h.admin), Some(&with("127.0.0.1:9").to_string())).await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    assert_eq!(edited["settings"]["pubsub_endpoint"], "127.0.0.1:9");

    // The document lists it for every method.
    let (_, doc) = call(r, "GET", "/v1/openapi.json", None, None).await;
    for variant in doc["components"]["schemas"]["ConnectionBody"]["oneOf"].as_array().unwrap() {
        let p = &variant["properties"]["pubsub_endpoint"];
        assert!(p["pattern"].as_str().unwrap().contains("pubsub"), "{variant}");
    }
}
