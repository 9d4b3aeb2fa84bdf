//! `forcelink connection …`, the config file and environment as sources, `doctor`, `keygen`,
//! and several processes sharing one store.

use forcelink_test_support::spawn_playground;

use crate::home::{Home, Org, access_token_home, login_client_credentials};

#[tokio::test]
async fn connections_come_from_the_store_the_config_file_and_the_environment() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let mut home = Home::new();
    std::fs::create_dir_all(home.path("config/forcelink")).unwrap();
    std::fs::write(
        home.path("config/forcelink/config.toml"),
        format!(
            "default_connection = \"filed\"\n\n[connections.filed]\nmethod = \"client-credentials\"\nlogin_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"env:CS\"\n",
            org.instance_url, org.client_id
        ),
    )
    .unwrap();
    home.set_env("CS", &org.client_secret);
    home.set_env("FORCELINK_CONNECTIONS__ENVD__METHOD", "jwt");
    home.set_env("FORCELINK_CONNECTIONS__ENVD__CLIENT_ID", "x");
    home.json(&[
        "connection",
        "add",
        "stored",
        "--method",
        "device",
        "--login-url",
        &org.login_url,
        "--client-id",
        "abc",
    ])
    .await;
    let list = home.json(&["connection", "list"]).await;
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["envd", "filed", "stored"]);
    // The env-defined one lacks settings: listed with its problem, not an error.
    let envd = &list[0];
    assert!(envd["problem"].as_str().unwrap().contains("needs username"), "{envd}");
    // The default connection from the config file signs in and hands out a token.
    home.json(&["login", "client-credentials", "filed"]).await;
    let t = home.json(&["token", "get"]).await;
    assert!(t["access_token"].as_str().unwrap().len() > 20);
    // Only the store's connections can be removed by the CLI.
    let refused = home.run(&["connection", "remove", "filed", "--json"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.json()["error"]["fix"].as_str().unwrap().contains("config.toml"));
    assert_eq!(home.json(&["connection", "remove", "stored"]).await["removed"], true);
    assert_eq!(home.run(&["connection", "show", "stored"]).await.code, 4);
}

#[tokio::test]
async fn add_validates_refuses_duplicates_and_never_prints_secrets() {
    let home = Home::new();
    let missing = home.run(&["connection", "add", "p", "--method", "jwt", "--client-id", "id", "--json"]).await;
    assert_eq!(missing.code, 2);
    assert!(missing.json()["error"]["message"].as_str().unwrap().contains("needs username"), "{missing:?}");
    let ran = home
        .run(&[
            "connection",
            "add",
            "p",
            "--method",
            "password",
            "--client-id",
            "id",
            "--username",
            "u",
            "--password",
            "hunter2-secret",
            "--json",
        ])
        .await
        .ok();
    let doc = ran.json();
    assert!(doc["warnings"][0].as_str().unwrap().contains("command line"), "{doc}");
    let dup = home.run(&["connection", "add", "p", "--method", "device", "--client-id", "id"]).await;
    assert_eq!(dup.code, 2);
    assert!(dup.stderr.contains("--replace"), "{}", dup.stderr);
    let show = home.run(&["connection", "show", "p", "--json"]).await.ok();
    assert!(!show.stdout.contains("hunter2-secret"), "{}", show.stdout);
    assert_eq!(show.json()["result"]["connection"]["password"], "[stored]");
    // The store file holds the secret only encrypted.
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(home.path("data/forcelink")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            bytes.extend(std::fs::read(p).unwrap());
        }
    }
    assert!(!bytes.windows(14).any(|w| w == b"hunter2-secret"));
    // The key file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path("data/forcelink/master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn workflow_json_and_a_malformed_config_file() {
    let home = Home::new();
    let def = home.path("wf.json");
    std::fs::write(
        &def,
        r#"{"Username":"int@acme.com","ClientId":"3MVG9x","PrivateKey":"file:/nonexistent.key","InstanceUrl":"https://acme.my.salesforce.com","InstanceAPIVersion":"v59.0"}"#,
    )
    .unwrap();
    let r = home.json(&["connection", "add", "wf", "--from-json", def.to_str().unwrap()]).await;
    assert_eq!(r["connection"]["method"], "jwt");
    assert_eq!(r["connection"]["api_version"], "59.0");
    std::fs::create_dir_all(home.path("config/forcelink")).unwrap();
    std::fs::write(home.path("config/forcelink/config.toml"), "[connections.x]\nmethd = \"jwt\"\n").unwrap();
    let bad = home.run(&["connection", "list", "--json"]).await;
    assert_eq!(bad.code, 2);
    let msg = bad.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("config.toml") && msg.contains("methd"), "{msg}");
}

#[tokio::test]
async fn doctor_names_the_fix_for_broken_configurations() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let mut home = Home::new();
    home.set_env("WRONG", "not-the-secret");
    // 1. Client credentials against the generic login host.
    home.json(&[
        "connection",
        "add",
        "generic",
        "--method",
        "client-credentials",
        "--client-id",
        &org.client_id,
        "--client-secret",
        "env:WRONG",
    ])
    .await;
    // 2. A secret reference to an unset variable.
    home.json(&[
        "connection",
        "add",
        "unset",
        "--method",
        "client-credentials",
        "--login-url",
        &org.instance_url,
        "--client-id",
        &org.client_id,
        "--client-secret",
        "env:NOT_SET_ANYWHERE",
    ])
    .await;
    // 3. A wrong client secret.
    home.json(&[
        "connection",
        "add",
        "wrong",
        "--method",
        "client-credentials",
        "--login-url",
        &org.instance_url,
        "--client-id",
        &org.client_id,
        "--client-secret",
        "env:WRONG",
    ])
    .await;
    // 4. A JWT key file that holds no key.
    let not_a_key = home.path("not-a-key.pem");
    std::fs::write(&not_a_key, "hello").unwrap();
    let key_ref = format!("file:{}", not_a_key.display());
    home.json(&[
        "connection",
        "add",
        "badkey",
        "--method",
        "jwt",
        "--login-url",
        &org.login_url,
        "--client-id",
        &org.client_id,
        "--username",
        &org.username,
        "--private-key",
        &key_ref,
    ])
    .await;
    let expect = [
        ("generic", "My Domain"),
        ("unset", "export NOT_SET_ANYWHERE="),
        ("wrong", "consumer secret"),
        ("badkey", "forcelink keygen"),
    ];
    for (name, fix) in expect {
        let ran = home.run(&["doctor", name, "--json"]).await;
        assert_eq!(ran.code, 2, "{name}: {ran:?}");
        let doc = ran.json();
        assert_eq!(doc["result"]["healthy"], false);
        let fixes: Vec<String> = doc["result"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail")
            .filter_map(|c| c["fix"].as_str().map(str::to_owned))
            .collect();
        assert!(fixes.iter().any(|f| f.contains(fix)), "{name}: no fix mentioning {fix:?} in {fixes:?}");
    }
    // A healthy connection passes every check.
    let mut home = home;
    home.set_env("CS", &org.client_secret);
    home.json(&[
        "connection",
        "add",
        "good",
        "--method",
        "client-credentials",
        "--login-url",
        &org.instance_url,
        "--client-id",
        &org.client_id,
        "--client-secret",
        "env:CS",
    ])
    .await;
    let good = home.json(&["doctor", "good"]).await;
    assert_eq!(good["healthy"], true, "{good}");
    let checks: Vec<&str> = good["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    for c in ["settings", "secrets", "reachability", "clock", "token", "validity"] {
        assert!(checks.contains(&c), "{c} missing from {checks:?}");
    }
}

#[tokio::test]
async fn keygen_writes_a_private_key_and_a_certificate_that_sign_in() {
    let home = Home::new();
    let out = home.path("keys");
    let r = home.json(&["keygen", "--out", out.to_str().unwrap(), "--name", "acme"]).await;
    let key = std::path::PathBuf::from(r["private_key"].as_str().unwrap());
    let cert = std::fs::read_to_string(r["certificate"].as_str().unwrap()).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(std::fs::read_to_string(&key).unwrap().contains("BEGIN PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = home.run(&["keygen", "--out", out.to_str().unwrap(), "--name", "acme"]).await;
    assert_eq!(again.code, 2, "keygen must not overwrite a key: {again:?}");
}

#[tokio::test]
async fn four_processes_renewing_at_once_cause_one_token_request() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let mut home = Home::new();
    home.set_env("CS", &org.client_secret);
    login_client_credentials(&home, &org, "shared").await;
    let before = pg.control.token_requests("client_credentials").await;
    // Each process was refused the same token and renews: one renewal, four equal answers.
    let stale = home.json(&["token", "get", "shared"]).await["fingerprint"].as_str().unwrap().to_owned();
    let args = ["token", "get", "shared", "--refused", stale.as_str(), "--json"];
    let runs = (0..4).map(|_| home.run(&args));
    let results = futures_util::future::join_all(runs).await;
    let tokens: Vec<String> =
        results.into_iter().map(|r| r.ok().json()["result"]["access_token"].as_str().unwrap().to_owned()).collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_eq!(pg.control.token_requests("client_credentials").await - before, 1);
}

#[tokio::test]
async fn three_processes_on_postgresql_renewing_at_once_cause_one_token_request() {
    #[allow(clippy::disallowed_methods)] // tests take the database from the environment
    let url = std::env::var("FORCELINK_TEST_POSTGRES_URL")
        .expect("FORCELINK_TEST_POSTGRES_URL must point at a PostgreSQL database (scripts/test sets it)");
    // A database of its own: a store is sealed with one master key, and others share `test`.
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    let db = format!("forcelink_cli_{}", std::process::id());
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    let mut db_url = url::Url::parse(&url).unwrap();
    db_url.set_path(&format!("/{db}"));
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let mut home = Home::new();
    home.set_env("CS", &org.client_secret);
    home.set_env("FORCELINK_STORE", db_url.as_str());
    const NAME: &str = "replicated";
    login_client_credentials(&home, &org, NAME).await;
    let before = pg.control.token_requests("client_credentials").await;
    let stale = home.json(&["token", "get", NAME]).await["fingerprint"].as_str().unwrap().to_owned();
    let args = ["token", "get", NAME, "--refused", stale.as_str(), "--json"];
    let runs = (0..3).map(|_| home.run(&args));
    let results = futures_util::future::join_all(runs).await;
    let tokens: Vec<String> =
        results.into_iter().map(|r| r.ok().json()["result"]["access_token"].as_str().unwrap().to_owned()).collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_eq!(pg.control.token_requests("client_credentials").await - before, 1);
    admin.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")).await.unwrap();
}

#[tokio::test]
async fn rotate_key_re_encrypts_the_store_and_the_old_key_stops_opening_it() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let mut home = Home::new();
    home.set_env("CS", &org.client_secret);
    home.set_env("FORCELINK_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    login_client_credentials(&home, &org, "rot").await;
    let before = home.json(&["token", "get", "rot"]).await["access_token"].clone();
    let report = home.json(&["store", "rotate-key"]).await;
    assert_eq!(report["connections"], 1);
    assert_eq!(report["token_sets"], 1);
    assert_ne!(report["old_key_id"], report["new_key_id"]);
    let new_key = report["new_master_key"].as_str().unwrap().to_owned();
    // The old key is refused with a clear error; nothing was lost.
    let refused = home.run(&["token", "get", "rot", "--json"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains(report["new_key_id"].as_str().unwrap()));
    home.set_env("FORCELINK_MASTER_KEY", &new_key);
    assert_eq!(home.json(&["token", "get", "rot"]).await["access_token"], before);
    // With the default key file, rotation replaces the file and everything keeps working.
    let mut filed = Home::new();
    filed.set_env("CS", &org.client_secret);
    login_client_credentials(&filed, &org, "rot").await;
    let key_before = std::fs::read(filed.path("data/forcelink/master.key")).unwrap();
    let r = filed.json(&["store", "rotate-key"]).await;
    assert!(r.get("new_master_key").is_none(), "a key file source must not print the key: {r}");
    assert_ne!(std::fs::read(filed.path("data/forcelink/master.key")).unwrap(), key_before);
    filed.json(&["token", "get", "rot"]).await;
}

#[tokio::test]
async fn a_foreign_host_is_refused_when_saved_from_the_cli_and_the_config_file() {
    let mut home = Home::new();
    home.set_env("CS", "secret");
    let add = |extra: &'static [&'static str]| {
        let mut args = vec![
            "connection",
            "add",
            "evil",
            "--json",
            "--method",
            "client-credentials",
            "--login-url",
            "https://evil.example",
            "--client-id",
            "x",
            "--client-secret",
            "env:CS",
        ];
        args.extend_from_slice(extra);
        args
    };
    let refused = home.run(&add(&[])).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    let msg = refused.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("login_url") && msg.contains("--allow-origin"), "{msg}");
    let listed = home.json(&["connection", "list"]).await;
    assert!(!listed.to_string().contains("evil"), "nothing was saved: {listed}");
    // The operator allows that exact origin: saved.
    home.run(&add(&["--allow-origin", "https://evil.example"])).await.ok();
    // A config file naming a foreign host is refused when the connection is used.
    std::fs::create_dir_all(home.path("config/forcelink")).unwrap();
    std::fs::write(
        home.path("config/forcelink/config.toml"),
        "[connections.cfg]\nmethod = \"client-credentials\"\nlogin_url = \"https://evil.example\"\nclient_id = \"x\"\nclient_secret = \"env:CS\"\n",
    )
    .unwrap();
    let used = home.run(&["token", "get", "cfg", "--json"]).await;
    assert_eq!(used.code, 2, "{used:?}");
    assert!(used.stdout.contains("--allow-origin"), "{used:?}");
    // An old `insecure_hosts` setting says what replaced it.
    std::fs::write(home.path("config/forcelink/config.toml"), "insecure_hosts = [\"lan\"]\n").unwrap();
    let old = home.run(&["connection", "list", "--json"]).await;
    assert_eq!(old.code, 2);
    assert!(old.stdout.contains("allow_origins"), "{old:?}");
}

#[tokio::test]
async fn connection_test_goes_through_the_rest_client_and_redacts_what_salesforce_sent() {
    let pg = spawn_playground().await;
    let home = crate::home::signed_in(&pg).await;
    let ok = home.json(&["connection", "test"]).await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["instance_url"], pg.info.instance_url.trim_end_matches('/'), "{ok}");

    // An error page that echoes a session id: the failure shows the status and an excerpt
    // with the session id redacted, as every REST error does.
    let session = "00D000000000001!AQ0AQSessionSecretThatMustNotShow";
    pg.control
        .add_fault(serde_json::json!({
            "path_prefix": "/services/data/v64.0",
            "kind": "status",
            "status": 400,
            "content_type": "text/plain",
            "body": format!("bad request for session {session}"),
        }))
        .await;
    let failed = home.run(&["connection", "test", "--json"]).await;
    assert_eq!(failed.code, 1, "{failed:?}");
    let error = &failed.json()["error"];
    assert!(error["message"].as_str().unwrap().contains("400"), "{error}");
    assert!(!failed.stdout.contains("SessionSecretThatMustNotShow"), "{failed:?}");
    assert!(error["fix"].as_str().unwrap().contains("forcelink login"), "{error}");
}

#[tokio::test]
async fn connection_test_of_a_revoked_access_token_says_sign_in_again() {
    let pg = spawn_playground().await;
    let org = Org::of(&pg);
    let (home, access) = access_token_home(&org).await;
    let access = access.as_str();
    let http = reqwest::Client::new();
    let revoked =
        http.post(format!("{}/services/oauth2/revoke", org.instance_url)).form(&[("token", access)]).send().await;
    assert!(revoked.unwrap().status().is_success());
    let failed = home.run(&["connection", "test", "at", "--json"]).await;
    assert_eq!(failed.code, 3, "{failed:?}");
    let error = &failed.json()["error"];
    assert!(error["message"].as_str().unwrap().contains("refused the access token"), "{error}");
    assert!(error["fix"].as_str().unwrap().contains("forcelink login access-token at"), "{error}");
}

/// The store of a throwaway home, opened the way the CLI opens it.
async fn home_store(home: &Home) -> std::sync::Arc<dyn forcelink_store::ConnectionStore> {
    let location = forcelink_store::StoreLocation::Sqlite(home.path("data/forcelink/store.db"));
    let key = forcelink_store::KeySource::File(home.path("data/forcelink/master.key"));
    forcelink_store::open_store(&location, &key, std::sync::Arc::new(forcelink_auth::SystemClock))
        .await
        .expect("open the home's store")
}

#[tokio::test]
async fn list_and_show_give_each_connections_state_with_its_reason_fix_and_checks() {
    use std::time::{Duration, SystemTime};

    use forcelink_auth::ConnectionId;
    use forcelink_store::{ConnectionHealth, ConnectionState, HealthNote, LimitUsage};

    let home = Home::new();
    for name in ["fresh", "good", "stuck", "sick"] {
        home.json(&[
            "connection",
            "add",
            name,
            "--method",
            "device",
            "--environment",
            "production",
            "--client-id",
            "x",
        ])
        .await;
    }
    // What a broker's checks would have written (the broker's own tests cover how they get there).
    let store = home_store(&home).await;
    let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    let record = |name: &str, state: ConnectionState, reason: &str, fix: Option<&str>| {
        let mut h = ConnectionHealth::unknown(ConnectionId::new(name), since);
        h.state = state;
        h.reason = Some(reason.to_owned());
        h.fix = fix.map(str::to_owned);
        h
    };
    let mut good = record("good", ConnectionState::Healthy, "checked: the org answered /limits", None);
    good.checked_at = Some(since + Duration::from_secs(60));
    good.last_used = Some(since + Duration::from_secs(30));
    good.token_expires_at = Some(since + Duration::from_secs(7200));
    good.approvals_used = Some(2);
    good.limits.push(LimitUsage { name: "DailyApiRequests".into(), max: 15000, remaining: 13800 });
    good.note(HealthNote { at: since + Duration::from_secs(60), kind: "check".into(), ok: true, detail: "ok".into() });
    let stuck = record(
        "stuck",
        ConnectionState::ReauthorizationRequired,
        "the refresh token was revoked (invalid_grant)",
        Some("sign in again: Authorize on the page, or `forcelink login web stuck`"),
    );
    let sick = record("sick", ConnectionState::Unhealthy, "the user is frozen", Some("unfreeze the run-as user"));
    for h in [&good, &stuck, &sick] {
        store.write_health(h, None, &[]).await.unwrap();
    }

    let listed = home.run(&["connection", "list"]).await.ok().stdout;
    let header = listed.lines().next().unwrap();
    assert!(header.contains("STATE"), "{listed}");
    let row =
        |name: &str| listed.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in\n{listed}"));
    assert!(row("fresh").contains(" unknown "), "{listed}");
    assert!(row("good").contains(" healthy "), "{listed}");
    assert!(row("stuck").contains(" reauthorization_required "), "{listed}");
    assert!(row("sick").contains(" unhealthy "), "{listed}");
    assert!(listed.contains("sick, stuck need attention: `forcelink connection show sick`"), "{listed}");

    // JSON: the broker's field names.
    let rows = home.json(&["connection", "list"]).await;
    let by_name = |name: &str| rows.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
    let fresh = by_name("fresh");
    assert_eq!((fresh["state"].as_str(), fresh["state_since"].as_str()), (Some("unknown"), None), "{fresh}");
    let stuck_row = by_name("stuck");
    assert_eq!(stuck_row["state"], "reauthorization_required");
    assert_eq!(stuck_row["state_reason"], "the refresh token was revoked (invalid_grant)");
    assert_eq!(stuck_row["fix"], "sign in again: Authorize on the page, or `forcelink login web stuck`");
    assert_eq!(stuck_row["state_since"], "2026-01-01T00:00:00Z");

    let shown = home.run(&["connection", "show", "good"]).await.ok().stdout;
    for part in [
        "healthy since 2026-01-01T00:00:00Z",
        "checked: the org answered /limits",
        "token expires           2026-01-01T02:00:00Z",
        "2 of 5 used",
        "1200 of 15000 used (8%)",
        "last check              2026-01-01T00:01:00Z",
    ] {
        assert!(shown.contains(part), "{part:?} in\n{shown}");
    }
    let shown = home.run(&["connection", "show", "stuck"]).await.ok().stdout;
    assert!(shown.contains("fix                     sign in again: Authorize on the page"), "{shown}");
    let good_json = home.json(&["connection", "show", "good"]).await;
    assert_eq!(good_json["state"], "healthy");
    assert_eq!(good_json["state_since"], "2026-01-01T00:00:00Z");
    assert_eq!(good_json["checks"]["approvals_used"], 2);
    assert_eq!(good_json["checks"]["approvals_max"], 5);
    assert_eq!(good_json["checks"]["token_expires_at"], "2026-01-01T02:00:00Z");
    assert_eq!(good_json["checks"]["daily_api_requests"]["used_percent"], 8.0);
    assert_eq!(good_json["checks"]["recent"][0]["kind"], "check");
    let fresh_json = home.json(&["connection", "show", "fresh"]).await;
    assert_eq!(fresh_json["state"], "unknown");
    assert!(fresh_json["checks"]["daily_api_requests"].is_null(), "{fresh_json}");
}
