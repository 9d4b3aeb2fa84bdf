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
//! request: a renewal of an unused connection would spend an approval or a login for nothing);
//! its record only notes the check. Results move the connection's state ([`crate::monitor`])
//! and send `limits.near` (a limit 80 % used) and `approvals.near_limit` (4 of 5 used) once per
//! crossing.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use forcelink_auth::approvals::MAX_APPROVALS_PER_USER_AND_APP;
use forcelink_auth::store::ConnectionId;
use forcelink_store::{ConnectionHealth, HealthNote, LimitUsage};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::json;

use crate::error::ErrorResponse;
use crate::monitor::{self, Verdict, renewal_failed, transition, verdict_auth, verdict_client};
use crate::notify::Event;
use crate::state::BrokerState;

/// A connection used within this is renewed and checked; one idle longer is left alone. 1 day.
pub(crate) const ACTIVE_WITHIN: Duration = Duration::from_secs(24 * 3600);
/// A limit used at least this much sends `limits.near`. 80 %.
pub(crate) const LIMIT_WARN_FRACTION: f64 = 0.8;
/// Approvals of one user and app that send `approvals.near_limit`: 4 (of Salesforce's 5).
pub(crate) const APPROVALS_WARN: u32 = 4;
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
    let due: Vec<String> = connections
        .iter()
        .map(|c| c.name.as_str().to_owned())
        .filter(|name| due(healths.get(name), now, interval))
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
    let mut report = TickReport::default();
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
    let active = current
        .as_ref()
        .and_then(|h| h.last_used)
        .is_some_and(|u| now.duration_since(u).map_or(true, |idle| idle < ACTIVE_WITHIN));
    if !active {
        monitor::update(state, name, |h, now| {
            h.checked_at = Some(now);
            Some(Vec::new())
        })
        .await?;
        return Ok(true);
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

/// `limits.near` for each limit that crossed [`LIMIT_WARN_FRACTION`] since the last warning;
/// a limit that fell back below it may warn again later.
pub(crate) fn limit_events(h: &mut ConnectionHealth, limits: &[LimitUsage]) -> Vec<Event> {
    let mut events = Vec::new();
    h.limits_warned.retain(|name| limits.iter().any(|l| &l.name == name && l.used_fraction() >= LIMIT_WARN_FRACTION));
    for l in limits.iter().filter(|l| l.used_fraction() >= LIMIT_WARN_FRACTION) {
        if !h.limits_warned.contains(&l.name) {
            h.limits_warned.push(l.name.clone());
            events.push(Event::new(
                "limits.near",
                json!({
                    "limit": l.name,
                    "max": l.max,
                    "remaining": l.remaining,
                    "used_percent": (l.used_fraction() * 100.0).round(),
                }),
            ));
        }
    }
    events
}

/// `approvals.near_limit` when the count reaches [`APPROVALS_WARN`] (once, until it falls).
pub(crate) fn approval_events(h: &mut ConnectionHealth, used: u32) -> Vec<Event> {
    if used < APPROVALS_WARN {
        h.approvals_warned = false;
        return Vec::new();
    }
    if h.approvals_warned {
        return Vec::new();
    }
    h.approvals_warned = true;
    vec![Event::new("approvals.near_limit", json!({ "used": used, "max": MAX_APPROVALS_PER_USER_AND_APP }))]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> ConnectionHealth {
        ConnectionHealth::unknown(ConnectionId::new("acme"), SystemTime::UNIX_EPOCH)
    }
    fn limit(name: &str, max: i64, remaining: i64) -> LimitUsage {
        LimitUsage { name: name.into(), max, remaining }
    }

    #[test]
    fn a_limit_warns_once_per_crossing() {
        let mut h = h();
        assert!(limit_events(&mut h, &[limit("DailyApiRequests", 100, 30)]).is_empty());
        let e = limit_events(&mut h, &[limit("DailyApiRequests", 100, 20), limit("DataStorageMB", 5, 5)]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].data["limit"], "DailyApiRequests");
        assert_eq!(e[0].data["used_percent"], 80.0);
        assert!(limit_events(&mut h, &[limit("DailyApiRequests", 100, 10)]).is_empty(), "still above: no repeat");
        assert!(limit_events(&mut h, &[limit("DailyApiRequests", 100, 90)]).is_empty());
        assert_eq!(limit_events(&mut h, &[limit("DailyApiRequests", 100, 0)]).len(), 1, "a new crossing warns again");
    }

    #[test]
    fn approvals_warn_at_four_of_five_once() {
        let mut h = h();
        assert!(approval_events(&mut h, 3).is_empty());
        let e = approval_events(&mut h, 4);
        assert_eq!((e.len(), e[0].data["used"].as_u64(), e[0].data["max"].as_u64()), (1, Some(4), Some(5)));
        assert!(approval_events(&mut h, 5).is_empty());
        assert!(approval_events(&mut h, 2).is_empty());
        assert_eq!(approval_events(&mut h, 4).len(), 1);
    }

    #[test]
    fn leases_and_ticks_follow_the_interval_within_bounds() {
        assert_eq!(lease_ttl(Duration::from_secs(300)), Duration::from_secs(300));
        assert_eq!(lease_ttl(Duration::from_secs(1)), Duration::from_secs(5));
        assert_eq!(tick_period(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(tick_period(Duration::from_millis(100)), Duration::from_millis(250));
    }
}
