//! Background checks: every replica looks for due work a few times per interval
//! (`--health-interval`, default 5 minutes); a connection is due when its last check (on any
//! replica, as the store records it) is an interval old. A replica checks a due connection only
//! under the store's work lease `check:{name}`, and re-reads the record under it, so each
//! connection is checked once per interval however many replicas run; a replica that dies
//! mid-check holds the lease until it lapses ([`lease_ttl`]), then another takes the work.
//!
//! A check of a connection used in the last day renews its token when it would expire before the
//! next check (plus a random part of the interval, so renewals spread out), then reads `/limits`
//! with it — one request that proves the token and reports the org's API usage — and counts the
//! approvals of its user and app. A connection idle for longer is not touched (no token
//! request: a renewal of an unused connection would spend an approval or a login for nothing),
//! and costs nothing either: it is recognised in the one bulk read of the health records, so it
//! takes no lease and writes nothing (10,000 idle connections once cost 5 s of CPU per interval
//! in lease and record writes). Results move the connection's state ([`crate::monitor`])
//! and send `limits.near` (a limit 80 % used) and `approvals.near_limit` (4 of 5 used) once per
//! crossing.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use forcelink_auth::store::ConnectionId;
use forcelink_store::{ConnectionHealth, HealthNote, LimitUsage};
use futures_util::StreamExt;
use rand::Rng;

use crate::error::ErrorResponse;
use crate::monitor::{
    self, Verdict, approval_events, limit_events, renewal_failed, transition, verdict_auth, verdict_client,
};
use crate::notify::Event;
use crate::state::BrokerState;

/// A connection used within this is renewed and checked; one idle longer is left alone. 1 day.
pub(crate) const ACTIVE_WITHIN: Duration = Duration::from_secs(24 * 3600);
/// Checks run at once by one replica. 8.
const CONCURRENT_CHECKS: usize = 8;

/// How long a check's lease lasts: twice the interval, between 5 s and 5 minutes.
pub(crate) fn lease_ttl(interval: Duration) -> Duration {
    (interval * 2).clamp(Duration::from_secs(5), Duration::from_secs(300))
}

/// How often a replica looks for due work: a quarter of the interval, between 250 ms and 30 s.
pub(crate) fn tick_period(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_millis(250), Duration::from_secs(30))
}

/// What one look for due work did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TickReport {
    /// Connections this replica checked.
    pub checked: Vec<String>,
    /// Due connections another replica held the lease of.
    pub leased_elsewhere: usize,
    /// Connections left alone: not used within [`ACTIVE_WITHIN`].
    pub idle: usize,
}

/// Runs [`tick`] every [`tick_period`] until the broker stops.
pub(crate) async fn run(state: BrokerState) {
    let interval = state.config().health_interval;
    loop {
        if let Err(e) = tick(&state).await {
            tracing::warn!("background checks: {}", e.message);
        }
        // tokio's timer, not the broker's clock: a test's manual clock must not spin this.
        tokio::time::sleep(tick_period(interval)).await;
    }
}

/// Whether the connection was used within [`ACTIVE_WITHIN`] (as the store records it).
fn active(h: Option<&ConnectionHealth>, now: SystemTime) -> bool {
    h.and_then(|h| h.last_used).is_some_and(|u| now.duration_since(u).map_or(true, |idle| idle < ACTIVE_WITHIN))
}

fn due(h: Option<&ConnectionHealth>, now: SystemTime, interval: Duration) -> bool {
    h.and_then(|h| h.checked_at).is_none_or(|c| now.duration_since(c).is_ok_and(|age| age >= interval))
}

/// Checks every due connection this replica can lease.
pub(crate) async fn tick(state: &BrokerState) -> Result<TickReport, ErrorResponse> {
    let interval = state.config().health_interval;
    let now = state.now();
    let connections = state.store().connections().await?;
    let healths: HashMap<String, ConnectionHealth> =
        state.store().healths().await?.into_iter().map(|h| (h.connection.as_str().to_owned(), h)).collect();
    for h in healths.values() {
        monitor::learn(state, h);
    }
    let mut idle = 0;
    let due: Vec<String> = connections
        .iter()
        .map(|c| c.name.as_str().to_owned())
        .filter(|name| {
            let h = healths.get(name);
            let keep = active(h, now);
            idle += usize::from(!keep);
            keep && due(h, now, interval)
        })
        .collect();
    let ttl = lease_ttl(interval);
    let results: Vec<Result<Option<String>, ErrorResponse>> = futures_util::stream::iter(due)
        .map(|name| async move {
            let lease = format!("check:{name}");
            if !state.store().try_work_lease(&lease, state.holder(), ttl).await? {
                return Ok(None);
            }
            let result = check(state, &name).await;
            if let Err(e) = state.store().release_work_lease(&lease, state.holder()).await {
                tracing::warn!(connection = %name, "releasing a check lease: {e}");
            }
            result.map(|checked| checked.then_some(name))
        })
        .buffer_unordered(CONCURRENT_CHECKS)
        .collect()
        .await;
    let mut report = TickReport { idle, ..TickReport::default() };
    for r in results {
        match r {
            Ok(Some(name)) => report.checked.push(name),
            Ok(None) => report.leased_elsewhere += 1,
            Err(e) => tracing::warn!("a background check: {}", e.message),
        }
    }
    report.checked.sort();
    Ok(report)
}

/// What a check found, before it is written.
struct Findings {
    verdict: Verdict,
    notes: Vec<HealthNote>,
    events: Vec<Event>,
    limits: Option<Vec<LimitUsage>>,
    approvals: Option<u32>,
    expires_at: Option<SystemTime>,
}

/// Checks one connection (under its lease); false when another replica checked it meanwhile.
pub(crate) async fn check(state: &BrokerState, name: &str) -> Result<bool, ErrorResponse> {
    let interval = state.config().health_interval;
    let now = state.now();
    let current = state.store().health(&ConnectionId::new(name)).await?;
    if !due(current.as_ref(), now, interval) {
        return Ok(false);
    }
    if !active(current.as_ref(), now) {
        // Gone idle since the bulk read: left alone like the others.
        return Ok(false);
    }
    let findings = investigate(state, name, interval).await;
    monitor::update(state, name, |h, now| {
        let mut events = transition(h, &findings.verdict, now);
        events.extend(findings.events.iter().cloned());
        for n in findings.notes.iter().rev() {
            h.note(n.clone());
        }
        h.checked_at = Some(now);
        if findings.expires_at.is_some() {
            h.token_expires_at = findings.expires_at;
        }
        if let Some(limits) = &findings.limits {
            events.extend(limit_events(h, limits));
            h.limits = limits.clone();
        }
        if let Some(used) = findings.approvals {
            events.extend(approval_events(h, used));
            h.approvals_used = Some(used);
        }
        Some(events)
    })
    .await?;
    Ok(true)
}

/// Renews when due, reads `/limits`, counts approvals.
async fn investigate(state: &BrokerState, name: &str, interval: Duration) -> Findings {
    let now = state.now();
    let mut f = Findings {
        verdict: Verdict::healthy("checked: the org answered /limits"),
        notes: Vec::new(),
        events: Vec::new(),
        limits: None,
        approvals: None,
        expires_at: None,
    };
    let entry = match state.entry(name).await {
        Ok(e) => e,
        Err(e) => {
            f.verdict = Verdict {
                state: forcelink_store::ConnectionState::Unhealthy,
                reason: e.message,
                fix: Some("correct the connection's settings".to_owned()),
            };
            return f;
        }
    };
    // Renew now when the token would expire before the next check (plus a random part of the
    // interval, so many connections do not renew in the same second).
    let stored = entry.cache.stored().await.ok().flatten();
    let margin = interval + interval.mul_f64(rand::thread_rng().gen_range(0.0..0.5));
    if let Some(s) = &stored
        && let Some(expires) = s.set.expires_at
        && expires <= now + margin
    {
        entry.cache.invalidate(&s.set.access_token);
        match entry.cache.get_token().await {
            Ok(_) => f.notes.push(HealthNote {
                at: now,
                kind: "renewal".into(),
                ok: true,
                detail: "renewed before expiry".into(),
            }),
            Err(e) => {
                let v = verdict_auth(&e);
                f.notes.push(HealthNote { at: now, kind: "renewal".into(), ok: false, detail: v.reason.clone() });
                f.events.push(renewal_failed(&v));
                f.verdict = v;
                return f;
            }
        }
    }
    match &entry.client {
        Some(client) => match client.limits().send().await {
            Ok(limits) => {
                f.limits = Some(
                    limits
                        .iter()
                        .map(|(n, l)| LimitUsage { name: n.clone(), max: l.max, remaining: l.remaining })
                        .collect(),
                );
                f.notes.push(HealthNote {
                    at: now,
                    kind: "check".into(),
                    ok: true,
                    detail: "the org answered /limits".into(),
                });
            }
            Err(e) => {
                f.verdict = verdict_client(&e);
                f.notes.push(HealthNote { at: now, kind: "check".into(), ok: false, detail: f.verdict.reason.clone() });
            }
        },
        None => match entry.cache.get_token().await {
            Ok(_) => f.verdict = Verdict::healthy("checked: a token was obtained"),
            Err(e) => f.verdict = verdict_auth(&e),
        },
    }
    let stored = entry.cache.stored().await.ok().flatten();
    f.expires_at = stored.as_ref().and_then(|s| s.set.expires_at);
    if let Some(s) = &stored
        && s.set.refresh_token.is_some()
        && let Some(user) = s.set.user_id()
        && let Ok(Some(app)) = entry.connection.app_credentials(state.secrets())
        && let Ok(list) = state.store().approvals(user, &app.client_id).await
    {
        f.approvals = Some(u32::try_from(list.len()).unwrap_or(u32::MAX));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_and_ticks_follow_the_interval_within_bounds() {
        assert_eq!(lease_ttl(Duration::from_secs(300)), Duration::from_secs(300));
        assert_eq!(lease_ttl(Duration::from_secs(1)), Duration::from_secs(5));
        assert_eq!(tick_period(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(tick_period(Duration::from_millis(100)), Duration::from_millis(250));
    }

    mod with_a_playground {
        use std::sync::Arc;

        use forcelink_auth::{Clock, ManualClock, Transport, UrlPolicy};
        use forcelink_store::{
            ConnectionSpec, ConnectionState, ConnectionStore, DeliveryFilter, Environment, MemoryConnectionStore,
            Method, PutMode, SecretResolver, WebhookRecord, WebhookSecret,
        };
        use forcelink_test_support::{PlaygroundHandle, spawn_playground};

        use super::*;
        use crate::state::{BrokerConfig, BrokerState};

        const INTERVAL: Duration = Duration::from_secs(60);

        struct Setup {
            pg: PlaygroundHandle,
            store: Arc<dyn ConnectionStore>,
            clock: ManualClock,
        }

        async fn setup() -> Setup {
            let pg = spawn_playground().await;
            let clock = ManualClock::starting_now();
            let store: Arc<dyn ConnectionStore> = Arc::new(MemoryConnectionStore::new(Arc::new(clock.clone())));
            let spec = ConnectionSpec {
                method: Some(Method::ClientCredentials),
                environment: Some(Environment::Custom),
                login_url: Some(pg.instance_url().to_owned()),
                client_id: Some(pg.info.client.client_id.clone()),
                client_secret: Some(pg.info.client.client_secret.clone()),
                ..ConnectionSpec::default()
            };
            store.put_connection(&ConnectionId::new("pg"), &spec, PutMode::Create).await.unwrap();
            let hook = WebhookRecord {
                id: "wh_all".into(),
                url: "https://example.com/h".into(),
                events: vec!["*".into()],
                connections: vec!["*".into()],
                secret: WebhookSecret::new("whsec_c2VjcmV0"),
                created_by: "test".into(),
                created_at: clock.now(),
            };
            store.put_webhook(&hook).await.unwrap();
            Setup { pg, store, clock }
        }

        /// A replica over the shared store (its own caches and lease holder name).
        fn replica(s: &Setup) -> BrokerState {
            let transport = Transport::new(
                forcelink_auth::wire::default_http_client().unwrap(),
                Arc::new(s.clock.clone()),
                UrlPolicy::new().allow_any_loopback(),
            );
            let mut config = BrokerConfig::new(s.store.clone(), transport, SecretResolver::without_env());
            config.health_interval = INTERVAL;
            BrokerState::new(config).unwrap()
        }

        async fn mark_used(state: &BrokerState) {
            monitor::update(state, "pg", |h, now| {
                h.last_used = Some(now);
                Some(Vec::new())
            })
            .await
            .unwrap();
        }

        async fn events(s: &Setup) -> Vec<String> {
            let all = s.store.deliveries(&DeliveryFilter::default()).await.unwrap();
            all.iter().rev().map(|d| d.event_type.clone()).collect()
        }

        #[tokio::test]
        async fn an_idle_connection_is_left_alone_without_a_token_request_a_lease_or_a_write() {
            let s = setup().await;
            let a = replica(&s);
            let before = s.pg.control.token_requests("client_credentials").await;
            let r = tick(&a).await.unwrap();
            assert_eq!((r.checked.len(), r.idle), (0, 1), "{r:?}");
            assert_eq!(s.store.health(&ConnectionId::new("pg")).await.unwrap(), None, "nothing written");
            // No lease was taken: another holder could take it at once.
            assert!(s.store.try_work_lease("check:pg", "other", lease_ttl(INTERVAL)).await.unwrap());
            assert_eq!(s.pg.control.token_requests("client_credentials").await, before, "no token request");
            // Used a day and more ago: idle again.
            mark_used(&a).await;
            s.clock.advance(ACTIVE_WITHIN + INTERVAL);
            let r = tick(&a).await.unwrap();
            assert_eq!((r.checked.len(), r.idle), (0, 1), "{r:?}");
        }

        #[tokio::test]
        async fn one_replica_checks_each_connection_once_per_interval_and_a_dead_holder_is_taken_over() {
            let s = setup().await;
            let (a, b) = (replica(&s), replica(&s));
            mark_used(&a).await;
            assert_eq!(tick(&a).await.unwrap().checked, ["pg"]);
            let h = s.store.health(&ConnectionId::new("pg")).await.unwrap().unwrap();
            assert_eq!(h.state, ConnectionState::Healthy, "{h:?}");
            assert!(h.daily_api().is_some_and(|l| l.max > 0), "/limits was read: {h:?}");
            assert_eq!(h.notes[0].kind, "check");
            // Not due again on any replica within the interval.
            s.clock.advance(INTERVAL / 2);
            assert!(tick(&b).await.unwrap().checked.is_empty());
            assert!(tick(&a).await.unwrap().checked.is_empty());
            // Due: a replica that took the lease and died keeps the others out until it ends.
            s.clock.advance(INTERVAL);
            assert!(s.store.try_work_lease("check:pg", "dead-replica", lease_ttl(INTERVAL)).await.unwrap());
            let r = tick(&b).await.unwrap();
            assert_eq!((r.checked.len(), r.leased_elsewhere), (0, 1));
            s.clock.advance(lease_ttl(INTERVAL));
            assert_eq!(tick(&b).await.unwrap().checked, ["pg"]);
        }

        #[tokio::test]
        async fn a_frozen_run_as_user_turns_the_connection_unhealthy_and_back_with_one_event_each() {
            let s = setup().await;
            let a = replica(&s);
            mark_used(&a).await;
            tick(&a).await.unwrap();
            s.pg.control.set_user(&s.pg.info.user.username, serde_json::json!({"frozen": true})).await;
            s.pg.control.expire_sessions().await;
            s.clock.advance(INTERVAL);
            tick(&a).await.unwrap();
            let h = s.store.health(&ConnectionId::new("pg")).await.unwrap().unwrap();
            assert_eq!(h.state, ConnectionState::Unhealthy, "{h:?}");
            assert!(h.fix.as_deref().unwrap_or("").contains("unfreeze"), "{h:?}");
            s.pg.control.set_user(&s.pg.info.user.username, serde_json::json!({"frozen": false})).await;
            // The failure is remembered (backoff) until it ends; the next checks find it fixed.
            for _ in 0..20 {
                s.clock.advance(INTERVAL);
                tick(&a).await.unwrap();
                if s.store.health(&ConnectionId::new("pg")).await.unwrap().unwrap().state == ConnectionState::Healthy {
                    break;
                }
            }
            let h = s.store.health(&ConnectionId::new("pg")).await.unwrap().unwrap();
            assert_eq!(h.state, ConnectionState::Healthy, "{h:?}");
            let got = events(&s).await;
            let count = |t: &str| got.iter().filter(|e| *e == t).count();
            assert_eq!(count("connection.unhealthy"), 1, "{got:?}");
            assert_eq!(count("connection.recovered"), 1, "{got:?}");
        }

        #[tokio::test]
        async fn an_api_limit_past_eighty_percent_sends_limits_near_once() {
            let s = setup().await;
            let a = replica(&s);
            mark_used(&a).await;
            s.pg.control.settings(serde_json::json!({"daily_api_requests": 10})).await;
            tick(&a).await.unwrap();
            let entry = a.entry("pg").await.unwrap();
            let client = entry.client.as_ref().unwrap();
            for _ in 0..8 {
                let _ = client.limits().send().await;
            }
            s.clock.advance(INTERVAL);
            tick(&a).await.unwrap();
            s.clock.advance(INTERVAL);
            tick(&a).await.unwrap();
            let got = events(&s).await;
            assert_eq!(got.iter().filter(|e| *e == "limits.near").count(), 1, "{got:?}");
            let all = s.store.deliveries(&DeliveryFilter::default()).await.unwrap();
            let near = all.iter().find(|d| d.event_type == "limits.near").unwrap();
            assert!(near.body.contains("DailyApiRequests"), "{}", near.body);
        }
    }
}
