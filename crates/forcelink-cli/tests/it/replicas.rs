//! Three `forcelink serve` processes on one PostgreSQL schema behind a round-robin proxy, as
//! behind a load balancer without sticky sessions: the page's sign-in, Authorize through the
//! playground's login and consent pages, and a connect link work whichever replica answers each
//! request; an API key revoked through one replica is refused by every replica after a second;
//! background checks run once per interval between the three; and a replica killed while it
//! holds a check's lease loses the work to another once the lease ends.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should fail the test at once

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use forcelink_auth::{ConnectionId, SystemClock};
use forcelink_store::{ConnectionStore, MasterKey, PostgresStore};
use forcelink_test_support::browser::{Decision, hidden_input, no_redirect_client as http, sign_in};
use forcelink_test_support::{PlaygroundHandle, spawn_playground};
use serde_json::{Value, json};

use crate::broker::{Broker, admin_key, api, eventually};
use crate::home::Home;
use crate::tinyhttp::RoundRobin;

/// The replicas' `--health-interval`.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long a replica trusts a verified API key (the broker's key cache). 1 s.
const KEY_TRUST: Duration = Duration::from_secs(1);

fn postgres_url() -> String {
    #[allow(clippy::disallowed_methods)] // tests take the database from the environment
    std::env::var("FORCELINK_TEST_POSTGRES_URL")
        .expect("FORCELINK_TEST_POSTGRES_URL must point at a PostgreSQL database (scripts/test sets it)")
}

/// A schema of this test's own (the store's tables, sealed with this test's master key).
struct Schema {
    name: String,
    /// The database URL with `search_path` set to the schema: what the replicas are given.
    url: String,
    admin: tokio_postgres::Client,
}

impl Schema {
    async fn new() -> Self {
        let name = format!("forcelink_cli_replicas_{}", std::process::id());
        let base = postgres_url();
        let (admin, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("PostgreSQL");
        tokio::spawn(connection);
        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")).await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        Self { url: format!("{base}{sep}options=-csearch_path%3D{name}"), name, admin }
    }

    /// Who holds the work lease `name` and until when (ms since the epoch), if anyone.
    async fn lease(&self, name: &str) -> Option<(String, i64)> {
        let sql = format!("SELECT holder, until_ms FROM {}.forcelink_work_leases WHERE name = $1", self.name);
        let row = self.admin.query_opt(&sql, &[&name]).await.unwrap()?;
        Some((row.get(0), row.get(1)))
    }

    async fn drop_schema(self) {
        self.admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)).await.unwrap();
    }
}

/// `name=value` of the `Set-Cookie` header for `name`.
fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let pair = v.split(';').next()?.trim();
        pair.starts_with(&format!("{name}=")).then(|| pair.to_owned())
    })
}

/// The target of a page that moves on by itself (`<meta http-equiv="refresh" content="0;url=…">`).
fn refresh_target(html: &str) -> Option<String> {
    let start = html.find("content=\"0;url=")? + "content=\"0;url=".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

/// Which replica answered each request from `from` on, with its method and path.
fn routed_since(proxy: &RoundRobin, from: usize) -> Vec<(usize, String)> {
    proxy.log()[from..].iter().map(|r| (r.backend, format!("{} {} → {}", r.method, r.target, r.status))).collect()
}

/// Asserts that consecutive requests went to different replicas (what round robin promises,
/// and what makes each step depend on state another replica kept in the store).
fn hopped(steps: &[(usize, String)]) {
    for pair in steps.windows(2) {
        assert_ne!(pair[0].0, pair[1].0, "two steps on one replica: {steps:?}");
    }
}

/// `forcelink_token_cache_hits` for `connection` on one replica: tokens it took from memory,
/// which a background check does once (to read `/limits`).
async fn cache_hits(replica: &Broker, key: &str, connection: &str) -> u64 {
    let text = http()
        .get(format!("{}/metrics", replica.direct()))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = format!("connection=\"{connection}\"");
    text.lines()
        .filter(|l| l.starts_with("forcelink_token_cache_hits") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn all_hits(replicas: &[Option<Broker>], key: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for r in replicas {
        out.push(match r {
            Some(r) => cache_hits(r, key, "web1").await,
            None => 0,
        });
    }
    out
}

/// The times (ms) of the background checks of `web1` the store's record lists.
async fn check_times(store: &PostgresStore) -> BTreeSet<u128> {
    let Some(h) = store.health(&ConnectionId::new("web1")).await.unwrap() else { return BTreeSet::new() };
    let ms = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis();
    h.notes.iter().filter(|n| n.kind == "check").map(|n| ms(n.at)).collect()
}

async fn api_requests(pg: &PlaygroundHandle) -> u64 {
    let stats = pg.control.stats().await;
    stats["api_requests"].as_u64().unwrap_or_else(|| panic!("no api_requests in {stats}"))
}

/// Signs in to the page through the proxy with `key`; the session cookie.
async fn page_sign_in(base: &str, key: &str) -> String {
    let page = http().get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let login_cookie = cookie(&page, "forcelink_login").expect("a login form cookie");
    let csrf = hidden_input(&page.text().await.unwrap(), "csrf").expect("a CSRF field");
    let resp = http()
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
        .form(&[("csrf", csrf.as_str()), ("key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "sign-in on another replica than the form's");
    cookie(&resp, "forcelink_session").expect("a session cookie")
}

/// The page's new-connection form for a web-server-flow connection, posted through the proxy;
/// the org's authorize URL the answer moves on to.
async fn start_authorize(base: &str, session: &str, pg: &PlaygroundHandle, name: &str) -> String {
    let form = http().get(format!("{base}/connections/new?method=web")).header("cookie", session).send().await;
    let form = form.unwrap();
    assert_eq!(form.status(), 200, "the session is known to this replica too");
    let csrf = hidden_input(&form.text().await.unwrap(), "csrf").unwrap();
    let resp = http()
        .post(format!("{base}/connections"))
        .header("cookie", session)
        .form(&[
            ("csrf", csrf.as_str()),
            ("method", "web"),
            ("name", name),
            ("environment", "custom"),
            ("login_url", pg.login_url()),
            ("client_id", pg.info.client.client_id.as_str()),
            ("client_secret", pg.info.client.client_secret.as_str()),
            ("scope", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    refresh_target(&page).unwrap_or_else(|| panic!("no onward page: {page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_behind_a_round_robin_proxy_share_sessions_flows_revocations_and_background_work() {
    let schema = Schema::new().await;
    let pg = spawn_playground().await;
    let key = MasterKey::generate();
    let mut home = Home::new();
    home.set_env("FORCELINK_STORE", &schema.url);
    home.set_env("FORCELINK_MASTER_KEY", &key.to_base64());
    let admin = admin_key(&home).await;
    let store = PostgresStore::connect(&schema.url, key, Arc::new(SystemClock)).await.unwrap();

    let (proxy, listener) = RoundRobin::bind().await;
    let base = proxy.url.clone();
    let interval = format!("{}s", INTERVAL.as_secs());
    let args = ["--public-url", base.as_str(), "--health-interval", interval.as_str()];
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Some(Broker::start(&home, &args).await));
    }
    let live = |replicas: &Vec<Option<Broker>>| replicas.iter().flatten().map(|r| r.direct()).collect::<Vec<_>>();
    proxy.serve(listener, replicas.iter().flatten().map(|r| r.listen).collect());

    // Sign-in: the form, the sign-in and the first page each on another replica.
    let mark = proxy.log().len();
    let session = page_sign_in(&base, &admin).await;
    let index = http().get(format!("{base}/")).header("cookie", &session).send().await.unwrap();
    assert_eq!(index.status(), 200, "the session is in the store, not in one replica");
    let steps = routed_since(&proxy, mark);
    assert_eq!(steps.iter().map(|s| s.0).collect::<BTreeSet<_>>().len(), 3, "{steps:?}");

    // Authorize: the flow starts on one replica and its callback lands on another.
    let authorize = start_authorize(&base, &session, &pg, "web1").await;
    let mark = proxy.log().len() - 1;
    let user = &pg.info.user;
    let callback = sign_in(&pg, &authorize, &user.username, &user.password, Decision::Allow).await;
    assert!(callback.starts_with(&format!("{base}/oauth/callback?")), "{callback}");
    let done = http().get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("url=/connections/web1"));
    hopped(&routed_since(&proxy, mark));
    let (s, web1) = api(&base, "GET", "/v1/connections/web1", &admin, None).await;
    assert_eq!(s, 200, "{web1}");
    assert_eq!((web1["token"]["has_refresh_token"].as_bool(), web1["state"].as_str()), (Some(true), Some("healthy")));

    // A connect link: made, previewed, used and called back on four replicas in turn.
    let mark = proxy.log().len();
    let return_url = format!("{base}/done?tool=test");
    let link = json!({"connection": "linked", "environment": "custom", "login_url": pg.login_url(),
        "client_id": pg.info.client.client_id, "client_secret": pg.info.client.client_secret, "return_url": return_url});
    let (s, made) = api(&base, "POST", "/v1/connect-sessions", &admin, Some(link)).await;
    assert_eq!(s, 201, "{made}");
    let url = made["url"].as_str().unwrap().to_owned();
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200, "the preview");
    let go = http().post(&url).send().await.unwrap().text().await.unwrap();
    let authorize = refresh_target(&go).unwrap_or_else(|| panic!("no onward page: {go}"));
    let callback = sign_in(&pg, &authorize, &user.username, &user.password, Decision::Allow).await;
    let back = http().get(&callback).send().await.unwrap().text().await.unwrap();
    let back = refresh_target(&back).unwrap_or_else(|| panic!("no way back: {back}"));
    assert_eq!(back, format!("{return_url}&connection=linked&status=success"));
    hopped(&routed_since(&proxy, mark));
    let (s, linked) = api(&base, "GET", "/v1/connections/linked", &admin, None).await;
    assert_eq!((s, linked["token"]["has_refresh_token"].as_bool()), (200, Some(true)), "{linked}");
    // Only `web1` stays, so the checks below are its own.
    let (s, v) = api(&base, "DELETE", "/v1/connections/linked?revoke=false", &admin, None).await;
    assert_eq!(s, 200, "{v}");

    // A key every replica has verified (and trusts from memory), revoked through one of them.
    let (s, made) = api(
        &base,
        "POST",
        "/v1/api-keys",
        &admin,
        Some(json!({"name": "ci", "connections": ["web1"], "scopes": ["token"]})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let doomed = made["key"].as_str().unwrap().to_owned();
    for direct in live(&replicas) {
        let (s, t) = api(&direct, "GET", "/v1/connections/web1/token", &doomed, None).await;
        assert_eq!(s, 200, "{t}");
    }
    let direct = live(&replicas);
    let (s, v) =
        api(&direct[2], "DELETE", &format!("/v1/api-keys/{}", made["id"].as_str().unwrap()), &admin, None).await;
    assert_eq!(s, 200, "{v}");
    let revoked_at = tokio::time::Instant::now();
    for (i, replica) in direct.iter().enumerate() {
        eventually(&format!("replica {i} refusing the revoked key"), || async {
            let sent = tokio::time::Instant::now();
            let (s, _) = api(replica, "GET", "/v1/connections/web1/token", &doomed, None).await;
            assert!(
                s == 401 || (s == 200 && sent < revoked_at + KEY_TRUST),
                "replica {i} answered {s} {:?} after the revocation",
                sent - revoked_at
            );
            (s == 401).then_some(())
        })
        .await;
    }

    // Background checks: `web1` was used on every replica; one check per interval between them.
    for direct in live(&replicas) {
        assert_eq!(api(&direct, "GET", "/v1/connections/web1/token", &admin, None).await.0, 200);
    }
    let start_hits = all_hits(&replicas, &admin).await;
    let start_calls = api_requests(&pg).await;
    let mut seen = check_times(&store).await;
    let before = seen.last().copied().unwrap_or(0);
    let deadline = tokio::time::Instant::now() + crate::broker::WAIT;
    let (checks, by_replica) = loop {
        // Read in this order, so a check counted in the store was counted by its replica too.
        seen.extend(check_times(&store).await);
        let hits = all_hits(&replicas, &admin).await;
        let calls = api_requests(&pg).await - start_calls;
        let new: Vec<u128> = seen.iter().copied().filter(|t| *t > before).collect();
        let by_replica: Vec<u64> = hits.iter().zip(&start_hits).map(|(h, s)| h - s).collect();
        let n = new.len() as u64;
        // Each check is one token from one replica's memory and one /limits call.
        if n >= 4 && by_replica.iter().sum::<u64>() == n && calls == n {
            break (new, by_replica);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "checks {new:?}, cache hits per replica {by_replica:?}, /limits calls {calls}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for pair in checks.windows(2) {
        assert!(
            pair[1] - pair[0] >= INTERVAL.as_millis(),
            "two checks within one interval: {checks:?} ({by_replica:?})"
        );
    }
    // The CLI reads the same record from PostgreSQL.
    let shown = home.json(&["connection", "show", "web1"]).await;
    assert_eq!(shown["state"], "healthy", "{shown}");
    assert!(shown["checks"]["daily_api_requests"]["max"].as_i64() > Some(0), "{shown}");

    // A replica dies while it holds a check's lease: the next check waits for the lease to end
    // and another replica does it.
    let limits = format!("/services/data/v{}/limits", forcelink_auth::DEFAULT_API_VERSION);
    let (holder, lease, hits, last) = stuck_check(&pg, &store, &schema, &replicas, &admin, &limits).await;
    let dead = replicas[holder].take().unwrap();
    dead.kill().await;
    proxy.mark_down(holder);
    let next = eventually("a check after the dead replica's lease", || async {
        check_times(&store).await.into_iter().find(|t| *t > last)
    })
    .await;
    assert!(next >= lease.1 as u128, "checked at {next} while the dead replica's lease {lease:?} ran");
    let after = all_hits(&replicas, &admin).await;
    let by: Vec<usize> = (0..3).filter(|&i| after[i] > hits[i]).collect();
    assert!(!by.is_empty() && !by.contains(&holder), "the work moved from replica {holder} to {by:?}");
    let (s, v) = api(&base, "GET", "/v1/connections/web1", &admin, None).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("healthy")), "{v}");

    for r in replicas.into_iter().flatten() {
        r.kill().await;
    }
    drop(store);
    pg.shutdown().await;
    schema.drop_schema().await;
}

/// Makes the next check of `web1` hang on `/limits` (the playground delays its answer) and finds
/// the replica doing it: the one whose cache hits moved while no check finished. Returns that
/// replica, its lease (holder, until in ms), every replica's cache hits then, and the last
/// finished check.
async fn stuck_check(
    pg: &PlaygroundHandle,
    store: &PostgresStore,
    schema: &Schema,
    replicas: &[Option<Broker>],
    key: &str,
    limits: &str,
) -> (usize, (String, i64), Vec<u64>, u128) {
    let faults = format!("{}/faults", pg.info.control_url.trim_end_matches('/'));
    let mut last = check_times(store).await.last().copied().unwrap_or(0);
    for _ in 0..5 {
        // Just after a check: the next one is an interval away, so the fault catches that one.
        last = eventually("a check", || async { check_times(store).await.last().copied().filter(|t| *t > last) }).await;
        let hits = all_hits(replicas, key).await;
        pg.control.add_fault(json!({"path_prefix": limits, "count": 1, "kind": "delay", "delay_ms": 30_000})).await;
        let now = eventually("a check stuck on /limits", || async {
            let armed: Value =
                http().get(&faults).bearer_auth(&pg.info.control_key).send().await.ok()?.json().await.ok()?;
            let consumed = armed["faults"].as_array().is_some_and(Vec::is_empty);
            if consumed { Some(all_hits(replicas, key).await) } else { None }
        })
        .await;
        let moved: Vec<usize> = (0..replicas.len()).filter(|&i| now[i] > hits[i]).collect();
        let quiet = check_times(store).await.last() == Some(&last);
        if let ([i], true, Some(lease)) = (moved.as_slice(), quiet, schema.lease("check:web1").await) {
            return (*i, lease, now, last);
        }
        // Another check finished in between (a slow machine): which one hangs is not certain.
        pg.control.clear_faults().await;
    }
    panic!("no check could be caught hanging on /limits in five tries");
}
