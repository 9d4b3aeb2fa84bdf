//! The page over real sockets, as a browser without script would use it: cookies by hand.

use reqwest::StatusCode;

use crate::{Harness, call, harness, serve, serve_public};

use forcelink_test_support::browser::{hidden_input, no_redirect_client as http};

/// `name=value` of a `Set-Cookie` header for `name`, and the whole header.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let pair = v.split(';').next()?.trim();
        pair.starts_with(&format!("{name}=")).then(|| (pair.to_owned(), v.to_owned()))
    })
}

/// The target of a page that moves on by itself (`<meta http-equiv="refresh" content="0;url=…">`).
fn refresh_target(html: &str) -> Option<String> {
    let start = html.find("content=\"0;url=")? + "content=\"0;url=".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

/// Signs in with `key`; the session cookie (`forcelink_session=…`).
pub(crate) async fn sign_in(base: &str, key: &str) -> Result<String, (StatusCode, String)> {
    let page = http().get(format!("{base}/login")).send().await.unwrap();
    let (login_cookie, _) = set_cookie(&page, "forcelink_login").unwrap();
    let csrf = hidden_input(&page.text().await.unwrap(), "csrf").unwrap();
    let resp = http()
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
        .form(&[("csrf", csrf.as_str()), ("key", key)])
        .send()
        .await
        .unwrap();
    match set_cookie(&resp, "forcelink_session") {
        Some((pair, _)) if resp.status() == StatusCode::SEE_OTHER => Ok(pair),
        _ => {
            let status = resp.status();
            Err((status, resp.text().await.unwrap()))
        }
    }
}

/// Fills in and posts the page's new-connection form for a web-server-flow connection `name`
/// on the harness's playground, with `more` fields; `host` is sent as the `Host` header.
async fn new_web_connection(
    h: &Harness,
    base: &str,
    session: &str,
    name: &str,
    host: Option<&str>,
    more: &[(&str, &str)],
) -> reqwest::Response {
    let form = http().get(format!("{base}/connections/new?method=web")).header("cookie", session).send().await;
    let csrf = hidden_input(&form.unwrap().text().await.unwrap(), "csrf").unwrap();
    let mut post = http().post(format!("{base}/connections")).header("cookie", session);
    if let Some(host) = host {
        post = post.header("host", host);
    }
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("method", "web"),
        ("name", name),
        ("environment", "custom"),
        ("login_url", h.pg.login_url()),
        ("client_id", h.pg.info.client.client_id.as_str()),
    ];
    fields.extend_from_slice(more);
    post.form(&fields).send().await.unwrap()
}

#[tokio::test]
async fn sign_in_needs_an_admin_key_and_the_forms_csrf_token() {
    let h = harness().await;
    let (base, _server) = serve(h.state.clone()).await;
    let resp = http().get(format!("{base}/")).send().await.unwrap();
    assert!(resp.status().is_redirection());
    assert_eq!(resp.headers()["location"], "/login");
    let page = http().get(format!("{base}/login")).send().await.unwrap();
    let (_, header) = set_cookie(&page, "forcelink_login").unwrap();
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"), "{header}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<label for=\"key\">"), "the key field has a label");
    // No CSRF cookie: refused even with a good key.
    let csrf = hidden_input(&html, "csrf").unwrap();
    let resp = http().post(format!("{base}/login")).form(&[("csrf", csrf.as_str()), ("key", &h.admin)]).send().await;
    assert_eq!(resp.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(sign_in(&base, &h.token_key).await.unwrap_err().0, StatusCode::FORBIDDEN);
    // A read-only admin key cannot sign in: the page changes things.
    let reader = crate::add_read_only_key(&*h.store, &["*"], &["*"]).await;
    let (status, text) = sign_in(&base, &reader).await.unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("read-only"), "{text}");
    assert_eq!(sign_in(&base, "flk_nope").await.unwrap_err().0, StatusCode::UNAUTHORIZED);
    let session = sign_in(&base, &h.admin).await.unwrap();
    let list = http().get(format!("{base}/")).header("cookie", &session).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let html = list.text().await.unwrap();
    assert!(html.contains("href=\"/connections/pg\""), "{html}");
    // A form posted without the session's CSRF token changes nothing.
    let resp = http()
        .post(format!("{base}/connections/pg/delete"))
        .header("cookie", &session)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(h.store.connections().await.unwrap().len(), 1);
    // The method's own fields, and only those.
    let web = http().get(format!("{base}/connections/new?method=web")).header("cookie", &session).send().await;
    let web = web.unwrap().text().await.unwrap();
    assert!(web.contains("name=\"client_secret\"") && !web.contains("name=\"private_key\""));
    let jwt = http().get(format!("{base}/connections/new?method=jwt")).header("cookie", &session).send().await;
    let jwt = jwt.unwrap().text().await.unwrap();
    assert!(jwt.contains("name=\"private_key\"") && !jwt.contains("name=\"client_secret\""));
    // Sign-out ends the session; both are in the audit log.
    let csrf = hidden_input(&html, "csrf").unwrap();
    let out = http().post(format!("{base}/logout")).header("cookie", &session).form(&[("csrf", csrf.as_str())]);
    assert_eq!(out.send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let after = http().get(format!("{base}/")).header("cookie", &session).send().await.unwrap();
    assert_eq!(after.headers()["location"], "/login");
    let audit = h.store.audit(None, 50).await.unwrap();
    let admin_id = forcelink_store::apikey::parse(&h.admin).unwrap().0;
    for action in ["web.sign-in", "web.sign-out"] {
        let e = audit.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("{action} in {audit:?}"));
        assert_eq!(e.actor, format!("web:api-key:{admin_id}"));
    }
}

#[tokio::test]
async fn authorize_runs_the_web_server_flow_and_the_connection_turns_green() {
    let h = harness().await;
    let (base, _state, _server) = serve_public(&h).await;
    let session = sign_in(&base, &h.admin).await.unwrap();
    let secret = [("client_secret", h.pg.info.client.client_secret.as_str()), ("scope", "")];
    // A malformed Pub/Sub endpoint comes back on the form, saying why, with what was typed.
    let bad = [secret[0], secret[1], ("pubsub_endpoint", "no-port")];
    let resp = new_web_connection(&h, &base, &session, "web1", None, &bad).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let page = resp.text().await.unwrap();
    assert!(page.contains("pubsub_endpoint") && page.contains("value=\"no-port\""), "{page}");
    let endpoint = h.pg.info.pubsub_endpoint.clone();
    let with_endpoint = [secret[0], secret[1], ("pubsub_endpoint", endpoint.as_str())];
    let resp = new_web_connection(&h, &base, &session, "web1", None, &with_endpoint).await;
    // A page that moves on to the org (a redirect would break the page's form-action policy).
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.unwrap();
    let authorize = refresh_target(&page).unwrap();
    assert!(authorize.starts_with(h.pg.login_url()), "{authorize}");
    for part in ["code_challenge_method=S256", "state=", "redirect_uri=http%3A%2F%2F127.0.0.1"] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    // The playground's login and consent pages.
    let page = http().get(&authorize).send().await.unwrap().text().await.unwrap();
    let pending = hidden_input(&page, "pending").unwrap_or_else(|| panic!("no login page: {page}"));
    let resp = http()
        .post(format!("{}/services/oauth2/authorize/login", h.pg.login_url()))
        .form(&[
            ("pending", pending.as_str()),
            ("username", &h.pg.info.user.username),
            ("password", &h.pg.info.user.password),
        ])
        .send()
        .await
        .unwrap();
    let resp = if resp.status() == 200 {
        let page = resp.text().await.unwrap();
        let pending = hidden_input(&page, "pending").unwrap_or_else(|| panic!("no consent page: {page}"));
        http()
            .post(format!("{}/services/oauth2/authorize/consent", h.pg.login_url()))
            .form(&[("pending", pending.as_str()), ("decision", "allow")])
            .send()
            .await
            .unwrap()
    } else {
        resp
    };
    let callback = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&format!("{base}/oauth/callback?")), "{callback}");
    // The callback needs no session cookie (it comes from another site); the state ties it.
    let done = http().get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let html = done.text().await.unwrap();
    assert!(html.contains("url=/connections/web1"), "{html}");
    // Each authorization is used once.
    assert_eq!(http().get(&callback).send().await.unwrap().status(), StatusCode::BAD_REQUEST);

    let detail = http().get(format!("{base}/connections/web1")).header("cookie", &session).send().await.unwrap();
    let html = detail.text().await.unwrap();
    // Signed in by a person: healthy, and the sign-in is among the latest notes.
    assert!(html.contains("data-state=\"healthy\""), "{html}");
    assert!(html.contains("<td>sign-in</td>"), "{html}");
    assert!(!html.contains(&h.pg.info.client.client_secret));
    let (s, token) = call(&h.router, "GET", "/v1/connections/web1/token", Some(&h.admin), None).await;
    assert_eq!(s, 200, "{token}");
    let (_, described) = call(&h.router, "GET", "/v1/connections/web1", Some(&h.admin), None).await;
    assert_eq!(described["token"]["has_refresh_token"], true, "{described}");
    assert_eq!(described["settings"]["pubsub_endpoint"], endpoint.as_str(), "{described}");
    // Re-authorize is a form POST with the CSRF token; a GET or a forged token starts nothing.
    let csrf = hidden_input(&html, "csrf").unwrap();
    let again = format!("{base}/connections/web1/authorize");
    assert_eq!(http().get(&again).header("cookie", &session).send().await.unwrap().status(), 405);
    let forged = http().post(&again).header("cookie", &session).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let ok = http().post(&again).header("cookie", &session).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert!(refresh_target(&ok.text().await.unwrap()).unwrap().starts_with(h.pg.login_url()));
    // Test from the page, then delete with revoke.
    let tested = http()
        .post(format!("{base}/connections/web1/test"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(tested.text().await.unwrap().contains("Test passed"));
    let deleted = http()
        .post(format!("{base}/connections/web1/delete"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(deleted.text().await.unwrap().contains("its tokens were revoked"));
    let approvals = h.pg.control.stats().await["approvals"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(approvals, 0, "the refresh token was revoked at the org");
}

#[tokio::test]
async fn the_keys_page_creates_a_key_shown_once_and_revokes_it_with_csrf() {
    let h = harness().await;
    let (base, _server) = serve(h.state.clone()).await;
    let session = sign_in(&base, &h.admin).await.unwrap();
    let page = http().get(format!("{base}/keys")).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = hidden_input(&page.text().await.unwrap(), "csrf").unwrap();
    let form = [("csrf", csrf.as_str()), ("name", "from-page"), ("connections", "pg"), ("scopes", "token")];
    // Without the CSRF token nothing is created.
    let forged = http().post(format!("{base}/keys")).header("cookie", &session).form(&form[1..]).send().await;
    assert_eq!(forged.unwrap().status(), StatusCode::FORBIDDEN);
    let before = h.store.api_keys().await.unwrap().len();
    let created = http().post(format!("{base}/keys")).header("cookie", &session).form(&form).send().await.unwrap();
    assert_eq!(created.status(), 200);
    let html = created.text().await.unwrap();
    let start = html.find("<code data-new-key>").unwrap() + "<code data-new-key>".len();
    let key = html[start..].split('<').next().unwrap().to_owned();
    assert!(key.starts_with("flk_"), "{html}");
    assert_eq!(h.store.api_keys().await.unwrap().len(), before + 1);
    assert_eq!(call(&h.router, "GET", "/v1/connections/pg/token", Some(&key), None).await.0, 200);
    // Shown once: the list does not show it again.
    let again = http().get(format!("{base}/keys")).header("cookie", &session).send().await.unwrap();
    assert!(!again.text().await.unwrap().contains(&key));
    let id = forcelink_store::apikey::parse(&key).unwrap().0.to_owned();
    let revoked = http()
        .post(format!("{base}/keys/{id}/revoke"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(call(&h.router, "GET", "/v1/connections/pg/token", Some(&key), None).await.0, 401);
    // A page user whose key is not for every connection cannot manage keys.
    let pg_admin = crate::add_key(&*h.store, &["pg"], &["admin"]).await;
    let limited = sign_in(&base, &pg_admin).await.unwrap();
    let refused = http().get(format!("{base}/keys")).header("cookie", &limited).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_redirect_uri_comes_from_the_public_url_never_the_host_header() {
    let h = harness().await;
    let (base, _state, _server) = serve_public(&h).await;
    let session = sign_in(&base, &h.admin).await.unwrap();
    let resp = new_web_connection(&h, &base, &session, "web2", Some("evil.example:1234"), &[]).await;
    let authorize = refresh_target(&resp.text().await.unwrap()).unwrap();
    let url = url::Url::parse(&authorize).unwrap();
    let redirect = url.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
    assert_eq!(redirect, format!("{base}/oauth/callback"));
    assert!(!authorize.contains("evil.example"));
    // Without a public URL the broker refuses to start the flow rather than trust `Host`.
    let (plain, _server) = serve(h.state.clone()).await;
    let session = sign_in(&plain, &h.admin).await.unwrap();
    let page = http().get(format!("{plain}/connections/web2")).header("cookie", &session).send().await.unwrap();
    let csrf = hidden_input(&page.text().await.unwrap(), "csrf").unwrap();
    let resp = http()
        .post(format!("{plain}/connections/web2/authorize"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("--public-url"));
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_api_errors_are_json() {
    let h = harness().await;
    let (base, _server) = serve(h.state.clone()).await;
    for path in ["/login", "/", "/healthz", "/v1/connections", "/v1/openapi.json", "/nowhere", "/v1/nowhere"] {
        let resp = http().get(format!("{base}{path}")).send().await.unwrap();
        let headers = resp.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        for part in ["default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
    let json = |resp: reqwest::Response| async move {
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_else(|e| panic!("{status}: not JSON: {e}"));
        (status, body["error"]["code"].as_str().unwrap().to_owned())
    };
    let c = http();
    let nowhere = c.get(format!("{base}/v1/nowhere")).send().await.unwrap();
    assert_eq!(json(nowhere).await, (StatusCode::NOT_FOUND, "not_found".to_owned()));
    let wrong = c.patch(format!("{base}/v1/connections")).bearer_auth(&h.admin).send().await.unwrap();
    assert_eq!(json(wrong).await, (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".to_owned()));
    let big = c
        .post(format!("{base}/v1/connections"))
        .bearer_auth(&h.admin)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(json(big).await, (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".to_owned()));
    let form = c.post(format!("{base}/v1/connections")).bearer_auth(&h.admin).form(&[("name", "x")]).send().await;
    assert_eq!(json(form.unwrap()).await, (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type".to_owned()));
    // A 5xx says only "internal error" and a request id; the detail is in the log.
    let spec = forcelink_store::ConnectionSpec {
        method: Some(forcelink_store::Method::AccessToken),
        instance_url: Some("http://127.0.0.1:9".to_owned()),
        access_token: Some("00Dstatic!token".to_owned()),
        ..Default::default()
    };
    let id = forcelink_auth::ConnectionId::new("down");
    h.store.put_connection(&id, &spec, forcelink_store::PutMode::Create).await.unwrap();
    let (s, body) = call(&h.router, "GET", "/v1/connections/down/sf/services/data/", Some(&h.admin), None).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "upstream");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("internal error (request id ") && !message.contains("127.0.0.1"), "{message}");
}

/// The page's text between `start` and the next `end` after it.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).unwrap_or_else(|| panic!("{start} in {html}"));
    let to = html[from..].find(end).map_or(html.len(), |i| from + i);
    &html[from..to]
}

pub(crate) async fn page(base: &str, path: &str, session: &str) -> (StatusCode, String) {
    let resp = http().get(format!("{base}{path}")).header("cookie", session).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn now() -> std::time::SystemTime {
    forcelink_auth::Clock::now(&forcelink_auth::SystemClock)
}

#[tokio::test]
async fn the_detail_page_shows_the_state_with_its_fix_usage_bars_renewals_and_audit_trail() {
    use forcelink_store::{ConnectionHealth, ConnectionState, HealthNote, LimitUsage};
    let h = harness().await;
    // No background checks: the record below stays as written until the page's Test.
    let (base, _server) = serve_quiet(&h).await;
    let session = sign_in(&base, &h.admin).await.unwrap();
    // Never checked nor used: the list says so.
    let (_, list) = page(&base, "/", &session).await;
    assert!(section(&list, "href=\"/connections/pg\"", "</tr>").contains("data-state=\"unknown\""), "{list}");

    // What the background checks would have recorded for a connection whose grant is gone.
    let id = forcelink_auth::ConnectionId::new("pg");
    let mut record = ConnectionHealth::unknown(id.clone(), now());
    record.state = ConnectionState::ReauthorizationRequired;
    record.reason = Some("invalid_grant: expired access/refresh token <b>".to_owned());
    record.fix = Some("sign the connection in again: Authorize on its page".to_owned());
    record.approvals_used = Some(4);
    record.checked_at = Some(now());
    record.limits = vec![
        LimitUsage { name: "DailyApiRequests".into(), max: 15000, remaining: 3000 },
        LimitUsage { name: "DailyBulkV2QueryJobs".into(), max: 10000, remaining: 9990 },
        LimitUsage { name: "HourlyPublishedPlatformEvents".into(), max: 1000, remaining: 50 },
    ];
    record.note(HealthNote { at: now(), kind: "renewal".into(), ok: false, detail: "refresh token revoked".into() });
    assert!(matches!(
        h.store.write_health(&record, None, &[]).await.unwrap(),
        forcelink_store::HealthWrite::Written(_)
    ));
    let entry = forcelink_store::AuditEntry {
        at: now(),
        connection: id.clone(),
        actor: "cli:someone@somewhere".into(),
        action: forcelink_store::AuditAction::ConnectionUpdated,
        detail: Some("client_id".into()),
    };
    h.store.append_audit(&entry).await.unwrap();

    let (status, html) = page(&base, "/connections/pg", &session).await;
    assert_eq!(status, 200);
    let state = section(&html, "id=\"state-heading\"", "</section>");
    assert!(state.contains("data-state=\"reauthorization_required\"") && state.contains("Re-authorization required"));
    // The reason is escaped by the template, never markup.
    assert!(state.contains("expired access/refresh token &#60;b&#62;") || state.contains("&lt;b&gt;"), "{state}");
    assert!(!html.contains("token <b>"), "{html}");
    assert!(section(&html, "data-fix", "</p>").contains("sign the connection in again"), "{html}");
    // Approvals of 5 and the daily API usage as bars with the same in words; a limit near its end listed.
    assert!(html.contains("<progress id=\"approvals\" aria-label=\"Approvals used\" max=\"5\" value=\"4\">"), "{html}");
    assert!(section(&html, "data-bar=\"approvals\"", "</span>").contains("4 of 5 (80.0 %)"), "{html}");
    assert!(html.contains("max=\"15000\" value=\"12000\""), "{html}");
    let daily = section(&html, "data-bar=\"daily-api\"", "</span>");
    assert!(daily.contains("class=\"near\"") && daily.contains("12000 of 15000 (80.0 %)"), "{daily}");
    assert!(html.contains("HourlyPublishedPlatformEvents") && !html.contains("DailyBulkV2QueryJobs"), "{html}");
    let notes = section(&html, "data-notes", "</table>");
    assert!(notes.contains("renewal") && notes.contains("failed") && notes.contains("refresh token revoked"));
    let audit = section(&html, "data-audit", "</table>");
    assert!(audit.contains("connection.updated") && audit.contains("cli:someone@somewhere"), "{audit}");
    // The list shows the same state and why.
    let (_, list) = page(&base, "/", &session).await;
    let row = section(&list, "href=\"/connections/pg\"", "</tr>");
    assert!(row.contains("data-state=\"reauthorization_required\"") && row.contains("refresh token"), "{row}");
    assert!(row.contains("12000 of 15000"), "{row}");

    // A test from the page that works moves the state to healthy; the org and user show, and the
    // test is in the audit trail.
    let csrf = hidden_input(&html, "csrf").unwrap();
    let tested = http()
        .post(format!("{base}/connections/pg/test"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let html = tested.text().await.unwrap();
    assert!(html.contains("Test passed"), "{html}");
    assert!(section(&html, "id=\"state-heading\"", "</section>").contains("data-state=\"healthy\""), "{html}");
    assert!(!html.contains("data-fix"), "a healthy connection has nothing to fix: {html}");
    assert!(html.contains("<th scope=\"row\">Org id</th><td>00D"), "{html}");
    assert!(html.contains("<th scope=\"row\">User id</th><td>005"), "{html}");
    assert!(!section(&html, "data-token-expires", "</td>").contains("—"), "a token expiry: {html}");
    assert!(section(&html, "data-audit", "</table>").contains("connection.tested"), "{html}");
    assert!(section(&html, "data-notes", "</table>").contains("<td>check</td>"), "{html}");
}

/// A broker on the harness's store without background work (no sender: deliveries stay as the
/// test leaves them).
async fn serve_quiet(h: &Harness) -> (String, tokio::task::JoinHandle<()>) {
    let mut config = forcelink_broker::BrokerConfig::new(
        h.store.clone(),
        crate::transport(),
        forcelink_store::SecretResolver::without_env(),
    );
    config.background = false;
    serve(forcelink_broker::BrokerState::new(config).unwrap()).await
}

#[tokio::test]
async fn the_webhooks_page_adds_and_deletes_with_csrf_shows_host_rule_errors_and_retries_failures() {
    use forcelink_store::{DeliveryFilter, DeliveryOutcome, DeliveryState, NewDelivery};
    let h = harness().await;
    let (base, _server) = serve_quiet(&h).await;
    let session = sign_in(&base, &h.admin).await.unwrap();
    let (status, html) = page(&base, "/", &session).await;
    assert_eq!(status, 200);
    assert!(html.contains("<a href=\"/webhooks\">Webhooks</a>"), "a nav link: {html}");
    let (status, html) = page(&base, "/webhooks", &session).await;
    assert_eq!(status, 200);
    assert!(html.contains("<label for=\"webhook-url\">") && html.contains("No webhooks yet"), "{html}");
    let csrf = hidden_input(&html, "csrf").unwrap();
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        http().post(format!("{base}{path}")).header("cookie", &session).form(&form).send()
    };
    let fields = |url: &str| {
        vec![("url", url.to_owned()), ("events", "connection.*, limits.near".to_owned()), ("connections", "pg".into())]
    };

    // Without the session's CSRF token nothing is added.
    let forged = post("/webhooks", fields("https://example.com/hook")).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(h.store.webhooks().await.unwrap().is_empty());
    // A URL that breaks the host rule comes back with the reason and what was typed.
    let mut bad = fields("http://example.com/hook");
    bad.push(("csrf", csrf.clone()));
    let resp = post("/webhooks", bad).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = resp.text().await.unwrap();
    assert!(section(&html, "role=\"alert\"", "</p>").contains("must be https"), "{html}");
    assert!(html.contains("value=\"http://example.com/hook\""), "{html}");
    assert!(h.store.webhooks().await.unwrap().is_empty());

    // Added: the secret is shown this once.
    let mut good = fields("https://example.com/hook");
    good.push(("csrf", csrf.clone()));
    let resp = post("/webhooks", good).await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let secret = section(&html, "<code data-new-secret>", "</code>").trim_start_matches("<code data-new-secret>");
    assert!(secret.starts_with("whsec_"), "{html}");
    let hooks = h.store.webhooks().await.unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(
        (hook.events.clone(), hook.connections.clone()),
        (vec!["connection.*".into(), "limits.near".into()], vec!["pg".into()])
    );
    assert_eq!(hook.secret.secret(), secret);
    let (_, html) = page(&base, "/webhooks", &session).await;
    assert!(!html.contains(secret), "shown once");
    let row = section(&html, &format!("data-webhook=\"{}\"", hook.id), "</tr>");
    assert!(row.contains("https://example.com/hook") && row.contains("none yet") && row.contains("0 failed"), "{row}");

    // A delivery that failed for good: counted, listed with its error and a Send again button.
    let delivery = NewDelivery {
        id: "msg_page_1".into(),
        target: hook.id.clone(),
        event_type: "connection.unhealthy".into(),
        connection: "pg".into(),
        body: "{}".into(),
        created_at: now(),
    };
    h.store.enqueue_deliveries(std::slice::from_ref(&delivery)).await.unwrap();
    let claimed = h.store.claim_deliveries("test", now(), 10, std::time::Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let failed =
        DeliveryOutcome::Failed { at: now(), status: Some(500), error: "the receiver answered HTTP 500".into() };
    assert!(h.store.finish_delivery(claimed[0].seq, "test", &failed).await.unwrap());
    let (_, html) = page(&base, "/webhooks", &session).await;
    let row = section(&html, &format!("data-webhook=\"{}\"", hook.id), "</tr>");
    assert!(row.contains("data-failed=\"1\"") && row.contains("connection.unhealthy: failed"), "{row}");
    let failures = section(&html, &format!("data-failures=\"{}\"", hook.id), "</table>");
    assert!(failures.contains("the receiver answered HTTP 500") && failures.contains("Send again"), "{failures}");
    let retry = format!("/webhooks/{}/deliveries/{}/retry", hook.id, claimed[0].seq);
    assert!(failures.contains(&format!("action=\"{retry}\"")), "{failures}");
    let pending = || async {
        let filter = DeliveryFilter { target: Some(hook.id.clone()), state: Some(DeliveryState::Pending), limit: 10 };
        h.store.deliveries(&filter).await.unwrap().len()
    };
    assert_eq!(post(&retry, vec![]).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(pending().await, 0);
    let resp = post(&retry, vec![("csrf", csrf.clone())]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/webhooks");
    assert_eq!(pending().await, 1, "sent again: pending");
    // Only a failed delivery is sent again.
    assert_eq!(post(&retry, vec![("csrf", csrf.clone())]).await.unwrap().status(), StatusCode::CONFLICT);

    // A key for another connection does not see the webhook, nor delete it.
    let other = sign_in(&base, &h.other_key).await.unwrap();
    let (_, html) = page(&base, "/webhooks", &other).await;
    assert!(!html.contains(&hook.id), "{html}");
    let other_csrf = hidden_input(&html, "csrf").unwrap();
    let delete = format!("/webhooks/{}/delete", hook.id);
    let resp = http()
        .post(format!("{base}{delete}"))
        .header("cookie", &other)
        .form(&[("csrf", other_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Delete: refused without the CSRF token, done with it.
    assert_eq!(post(&delete, vec![]).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(h.store.webhooks().await.unwrap().len(), 1);
    let resp = post(&delete, vec![("csrf", csrf.clone())]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(h.store.webhooks().await.unwrap().is_empty());
    let (_, html) = page(&base, "/webhooks", &session).await;
    assert!(html.contains("No webhooks yet"), "{html}");
    let audit = h.store.audit(None, 50).await.unwrap();
    for action in ["webhook.created", "webhook.deleted"] {
        assert!(audit.iter().any(|e| e.action == action), "{action} in {audit:?}");
    }
}
