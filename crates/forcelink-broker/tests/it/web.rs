//! The page over real sockets, as a browser without script would use it: cookies by hand.

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};

use crate::{call, harness, serve};

fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// `name=value` of a `Set-Cookie` header for `name`, and the whole header.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let pair = v.split(';').next()?.trim();
        pair.starts_with(&format!("{name}=")).then(|| (pair.to_owned(), v.to_owned()))
    })
}

fn http() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Signs in with `key`; the session cookie (`forcelink_session=…`).
async fn sign_in(base: &str, key: &str) -> Result<String, (StatusCode, String)> {
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
    let (base, _server) = serve(h.state.clone()).await;
    let session = sign_in(&base, &h.admin).await.unwrap();
    let form = http().get(format!("{base}/connections/new?method=web")).header("cookie", &session).send().await;
    let csrf = hidden_input(&form.unwrap().text().await.unwrap(), "csrf").unwrap();
    let resp = http()
        .post(format!("{base}/connections"))
        .header("cookie", &session)
        .form(&[
            ("csrf", csrf.as_str()),
            ("method", "web"),
            ("name", "web1"),
            ("environment", "custom"),
            ("login_url", h.pg.login_url()),
            ("client_id", &h.pg.info.client.client_id),
            ("client_secret", &h.pg.info.client.client_secret),
            ("scope", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{:?}", resp.text().await);
    let authorize = resp.headers()["location"].to_str().unwrap().to_owned();
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
    assert!(html.contains("data-health=\"green\""), "{html}");
    assert!(!html.contains(&h.pg.info.client.client_secret));
    let (s, token) = call(&h.router, "GET", "/v1/connections/web1/token", Some(&h.admin), None).await;
    assert_eq!(s, 200, "{token}");
    let (_, described) = call(&h.router, "GET", "/v1/connections/web1", Some(&h.admin), None).await;
    assert_eq!(described["token"]["has_refresh_token"], true, "{described}");
    // Test from the page, then delete with revoke.
    let csrf = hidden_input(&html, "csrf").unwrap();
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
