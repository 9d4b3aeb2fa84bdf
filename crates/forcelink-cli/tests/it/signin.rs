//! Every `forcelink login` method end to end against the playground, then `token get`,
//! `logout` and the store they share.

use forcelink_test_support::spawn_playground;
use serde_json::Value;

use crate::home::{Home, Org, access_token_home, api_status, approve_device, browser_sign_in, finish, read_until};

async fn token_get(home: &Home, name: &str) -> Value {
    home.json(&["token", "get", name]).await
}

#[tokio::test]
async fn client_credentials_login_then_token_get_reuses_the_stored_token() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let mut home = Home::new();
    home.set_env("PG_SECRET", &org.client_secret);
    let r = home
        .json(&[
            "login",
            "client-credentials",
            "cc",
            "--login-url",
            &org.instance_url,
            "--client-id",
            &org.client_id,
            "--client-secret",
            "env:PG_SECRET",
        ])
        .await;
    assert_eq!(r["name"], "cc");
    assert_eq!(r["saved_settings"], true);
    let first = token_get(&home, "cc").await;
    let second = token_get(&home, "cc").await;
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(first["instance_url"].as_str().unwrap().trim_end_matches('/'), org.instance_url);
    assert_eq!(api_status(&org.instance_url, first["access_token"].as_str().unwrap()).await, 200);
    // One token request for the login; both `token get`s were served from the store.
    assert_eq!(pg.control.token_requests("client_credentials").await, 1);
    // Human output is the bare token, for $(forcelink token get cc).
    let bare = home.run(&["token", "get", "cc"]).await.ok();
    assert_eq!(bare.stdout.trim(), first["access_token"].as_str().unwrap());
    // The secret was a reference: nothing secret is shown, the reference is.
    let show = home.json(&["connection", "show", "cc"]).await;
    assert_eq!(show["connection"]["client_secret"], "env:PG_SECRET");
    assert_eq!(show["token"]["signed_in"], true);
    let audit = home.json(&["store", "audit", "--connection", "cc"]).await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "token.issued").count(), 3, "{audit}");
    assert!(actions.contains(&"login"));
}

#[tokio::test]
async fn jwt_login_with_the_private_key_file() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let home = Home::new();
    let key = format!("file:{}", org.private_key_path);
    home.json(&[
        "login",
        "jwt",
        "jwt",
        "--login-url",
        &org.login_url,
        "--client-id",
        &org.client_id,
        "--username",
        &org.username,
        "--private-key",
        &key,
    ])
    .await;
    let t = token_get(&home, "jwt").await;
    assert_eq!(api_status(&org.instance_url, t["access_token"].as_str().unwrap()).await, 200);
    assert_eq!(pg.control.token_requests("urn:ietf:params:oauth:grant-type:jwt-bearer").await, 1);
}

#[tokio::test]
async fn password_login_works_and_warns_that_the_flow_is_legacy() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let mut home = Home::new();
    home.set_env("PW", &format!("{}{}", org.password, pg.info.user.security_token));
    home.set_env("CS", &org.client_secret);
    let ran = home
        .run(&[
            "login",
            "password",
            "pw",
            "--login-url",
            &org.login_url,
            "--client-id",
            &org.client_id,
            "--client-secret",
            "env:CS",
            "--username",
            &org.username,
            "--password",
            "env:PW",
        ])
        .await
        .ok();
    assert!(ran.stderr.contains("legacy"), "{}", ran.stderr);
    assert!(ran.stdout.contains("signed in: connection pw"), "{}", ran.stdout);
    let t = token_get(&home, "pw").await;
    assert_eq!(api_status(&org.instance_url, t["access_token"].as_str().unwrap()).await, 200);
}

#[tokio::test]
async fn access_token_login_keeps_the_given_token() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let (home, access) = access_token_home(&org).await;
    let access = access.as_str();
    assert_eq!(token_get(&home, "at").await["access_token"], access);
}

#[tokio::test]
async fn web_login_follows_the_browser_redirect_and_renews_with_the_refresh_token() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let mut home = Home::new();
    home.set_env("CS", &org.client_secret);
    let mut child = home.spawn(&[
        "login",
        "web",
        "web",
        "--login-url",
        &org.login_url,
        "--client-id",
        &org.client_id,
        "--client-secret",
        "env:CS",
        "--callback-url",
        "http://127.0.0.1:0/callback",
        "--no-browser",
        "--json",
    ]);
    let url = read_until(&mut child, |line| line.trim().starts_with("http").then(|| line.trim().to_owned())).await;
    assert!(url.contains("code_challenge=") && url.contains("state="), "{url}");
    assert_eq!(browser_sign_in(&pg, &url, &org.username, &org.password).await, 200);
    let ran = finish(child).await.ok();
    let doc = ran.json();
    assert_eq!(doc["result"]["has_refresh_token"], true, "{doc}");
    let first = token_get(&home, "web").await;
    assert_eq!(api_status(&org.instance_url, first["access_token"].as_str().unwrap()).await, 200);
    // The session ends: `token get --renew` renews with the refresh token, once.
    pg.control.expire_sessions().await;
    let renewed = home.json(&["token", "get", "web", "--renew"]).await;
    assert_ne!(renewed["access_token"], first["access_token"]);
    assert_eq!(api_status(&org.instance_url, renewed["access_token"].as_str().unwrap()).await, 200);
    assert_eq!(pg.control.token_requests("refresh_token").await, 1);

    // logout revokes at the playground (the approval is gone, the token refused), then forgets.
    let approvals = |stats: Value| stats["approvals"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(approvals(pg.control.stats().await), 1);
    let out = home.json(&["logout", "web"]).await;
    assert_eq!(out["revoked"], true);
    assert_eq!(approvals(pg.control.stats().await), 0);
    assert_eq!(api_status(&org.instance_url, renewed["access_token"].as_str().unwrap()).await, 401);
    let after = home.run(&["token", "get", "web", "--json"]).await;
    assert_eq!(after.code, 3, "sign-in needed: {after:?}");
    assert!(after.json()["error"]["fix"].as_str().unwrap().contains("forcelink login web web"));
}

#[tokio::test]
async fn device_login_is_approved_on_the_playground_page() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let home = Home::new();
    let mut child =
        home.spawn(&["login", "device", "dev", "--login-url", &org.login_url, "--client-id", &org.client_id]);
    let code = read_until(&mut child, |line| line.trim().strip_prefix("user code: ").map(str::to_owned)).await;
    approve_device(&pg, &code, &org.username, &org.password).await;
    let ran = finish(child).await.ok();
    assert!(ran.stdout.contains("signed in: connection dev"), "{ran:?}");
    let t = token_get(&home, "dev").await;
    assert_eq!(api_status(&org.instance_url, t["access_token"].as_str().unwrap()).await, 200);
}

#[tokio::test]
async fn token_get_names_the_problem_and_exit_code() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let home = Home::new();
    let unknown = home.run(&["token", "get", "nope", "--json"]).await;
    assert_eq!(unknown.code, 4, "{unknown:?}");
    home.json(&[
        "connection",
        "add",
        "w",
        "--method",
        "web",
        "--login-url",
        &org.login_url,
        "--client-id",
        &org.client_id,
    ])
    .await;
    let not_signed_in = home.run(&["token", "get", "w"]).await;
    assert_eq!(not_signed_in.code, 3, "{not_signed_in:?}");
    assert!(not_signed_in.stderr.contains("forcelink login web w"), "{}", not_signed_in.stderr);
    // A wrong secret: the typed OAuth error and its fix, exit code 2 (configuration).
    let mut home = home;
    home.set_env("CS", "wrong-secret");
    let bad = home
        .run(&[
            "login",
            "client-credentials",
            "bad",
            "--login-url",
            &org.instance_url,
            "--client-id",
            &org.client_id,
            "--client-secret",
            "env:CS",
        ])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("fix:"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("wrong-secret"));
    // Nothing was saved by the failed login.
    assert_eq!(home.run(&["connection", "show", "bad"]).await.code, 4);
}

#[tokio::test]
async fn login_method_help_lists_only_that_methods_options() {
    let home = Home::new();
    let jwt = home.run(&["login", "jwt", "--help"]).await.ok().stdout;
    for own in ["--private-key", "--username", "--audience", "--client-id", "--login-url", "--from-json"] {
        assert!(jwt.contains(own), "login jwt --help lacks {own}: {jwt}");
    }
    for other in ["--password", "--security-token", "--access-token", "--callback-url", "--no-browser", "--scope"] {
        assert!(!jwt.contains(other), "login jwt --help shows {other}: {jwt}");
    }
    let web = home.run(&["login", "web", "--help"]).await.ok().stdout;
    for own in ["--callback-url", "--no-browser", "--timeout", "--scope", "--client-secret", "--username"] {
        assert!(web.contains(own), "login web --help lacks {own}: {web}");
    }
    for other in ["--private-key", "--password", "--security-token", "--access-token", "--instance-url"] {
        assert!(!web.contains(other), "login web --help shows {other}: {web}");
    }
    let token = home.run(&["login", "access-token", "--help"]).await.ok().stdout;
    assert!(token.contains("--access-token") && token.contains("--instance-url"), "{token}");
    assert!(!token.contains("--client-id"), "login access-token --help shows --client-id: {token}");
}
