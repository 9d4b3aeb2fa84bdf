//! Connection states. The store keeps each connection's [`ConnectionHealth`]: `healthy`,
//! `unhealthy`, `reauthorization_required` or `unknown`, with the reason, the fix (from the error
//! catalogue) and since when. Three things move it: token outcomes on the request path (sent
//! here by [`BrokerState`] only when they differ from what this replica believes, so the hot
//! path stays two atomic reads), the background checks ([`crate::scheduler`]) and sign-ins.
//!
//! Every change is a compare-and-swap on the record's version, written together with the
//! webhook deliveries it causes: of several replicas seeing the same failure, one writes the
//! change and sends `connection.unhealthy`; the others find the record already changed and
//! send nothing.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use forcelink_auth::error::{Action, AuthError};
use forcelink_auth::store::ConnectionId;
use forcelink_client::ClientError;
use forcelink_store::{ConnectionHealth, ConnectionState, HealthNote, HealthWrite};
use serde_json::json;

use crate::error::ErrorResponse;
use crate::notify::{self, Event};
use crate::state::{BrokerState, LAST_USED_PRECISION, Observed, known_code, state_of};
use forcelink_auth::approvals::MAX_APPROVALS_PER_USER_AND_APP;
use forcelink_store::LimitUsage;

/// What a check or a token outcome says of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub state: ConnectionState,
    pub reason: String,
    pub fix: Option<String>,
}

impl Verdict {
    pub(crate) fn healthy(reason: impl Into<String>) -> Self {
        Self { state: ConnectionState::Healthy, reason: reason.into(), fix: None }
    }
}

/// What a person should do about an error of this kind.
fn fix_for(action: Action, specific: Option<&str>) -> Option<String> {
    if let Some(s) = specific {
        return Some(s.to_owned());
    }
    Some(
        match action {
            Action::Reauthorize => {
                "sign the connection in again: Authorize on its page, a connect link, or `forcelink login`"
            }
            Action::FixConfiguration => "correct the connection's settings or the connected app (see the reason)",
            Action::Retry => "nothing, if it passes by itself: the broker checks again at the next interval",
            _ => "report it with the broker's log",
        }
        .to_owned(),
    )
}

/// The verdict of a failure to get a token.
pub(crate) fn verdict_auth(e: &AuthError) -> Verdict {
    let specific = match e.root() {
        AuthError::StaticTokenRejected => {
            Some("provide a new access token: replace the connection's `access_token` (PUT the connection)")
        }
        AuthError::NoRefreshToken => Some("authorize the connection again (a refresh token is needed)"),
        _ => e.oauth().map(|o| o.remediation()),
    };
    Verdict { state: state_of(e), reason: e.root().to_string(), fix: fix_for(e.action(), specific) }
}

/// The verdict of a failed call to the org.
pub(crate) fn verdict_client(e: &ClientError) -> Verdict {
    if let ClientError::Auth(a) = e {
        return verdict_auth(a);
    }
    let action = e.action();
    let state = match action {
        // A token the org refuses even after one renewal: the grant is gone.
        Action::Reauthorize => ConnectionState::ReauthorizationRequired,
        _ => ConnectionState::Unhealthy,
    };
    Verdict { state, reason: e.to_string(), fix: fix_for(action, None) }
}

/// Moves `h` to the verdict's state; the events of the change (none when the state stays).
pub(crate) fn transition(h: &mut ConnectionHealth, v: &Verdict, now: SystemTime) -> Vec<Event> {
    let from = h.state;
    h.reason = Some(v.reason.clone());
    h.fix = v.fix.clone();
    if from == v.state {
        return Vec::new();
    }
    h.state = v.state;
    h.since = now;
    let data = json!({
        "state": v.state.as_str(),
        "previous_state": from.as_str(),
        "reason": v.reason,
        "fix": v.fix,
    });
    let kind = match (from, v.state) {
        (_, ConnectionState::Unhealthy) => "connection.unhealthy",
        (_, ConnectionState::ReauthorizationRequired) => "connection.reauthorization_required",
        (ConnectionState::Unhealthy | ConnectionState::ReauthorizationRequired, ConnectionState::Healthy) => {
            "connection.recovered"
        }
        _ => return Vec::new(),
    };
    vec![Event::new(kind, data)]
}

/// Applies `change` to the stored record of `name` (a new `unknown` record when there is none)
/// and writes it by compare-and-swap with the deliveries of the events `change` returns,
/// starting again when another writer came first. `change` returns `None` when there is
/// nothing to write. Nothing is written for a connection that no longer exists.
pub(crate) async fn update<F>(state: &BrokerState, name: &str, mut change: F) -> Result<ConnectionHealth, ErrorResponse>
where
    F: FnMut(&mut ConnectionHealth, SystemTime) -> Option<Vec<Event>>,
{
    let id = ConnectionId::new(name);
    for _ in 0..8 {
        let now = state.now();
        let current = state.store().health(&id).await?;
        let expected = current.as_ref().map(|h| h.version);
        let mut h = current.unwrap_or_else(|| ConnectionHealth::unknown(id.clone(), now));
        let Some(events) = change(&mut h, now) else {
            learn(state, &h);
            return Ok(h);
        };
        if expected.is_none() && state.store().connection(&id).await?.is_none() {
            return Ok(h);
        }
        let deliveries = notify::deliveries(state, name, &events).await?;
        match state.store().write_health(&h, expected, &deliveries).await? {
            HealthWrite::Written(version) => {
                h.version = version;
                if !deliveries.is_empty() {
                    state.wake_outbox();
                }
                learn(state, &h);
                return Ok(h);
            }
            HealthWrite::Conflict(_) => continue,
        }
    }
    Err(ErrorResponse::conflict(format!("connection {name:?}: its state kept changing while being written")))
}

/// Makes this replica believe what the store says of the connection.
pub(crate) fn learn(state: &BrokerState, h: &ConnectionHealth) {
    if let Some(entry) = state.live_entry(h.connection.as_str()) {
        entry.known.store(known_code(h.state), Ordering::Relaxed);
    }
}

/// Records a sign-in (Authorize, a connect link): the connection works now.
/// `approvals` is how many approvals the user and app hold now, when counted.
pub(crate) async fn signed_in(state: &BrokerState, name: &str, how: &str, approvals: Option<u32>) {
    let verdict = Verdict::healthy(format!("signed in ({how})"));
    let result = update(state, name, |h, now| {
        h.note(HealthNote { at: now, kind: "sign-in".into(), ok: true, detail: how.to_owned() });
        h.last_used = Some(now);
        let mut events = transition(h, &verdict, now);
        if let Some(used) = approvals {
            events.extend(approval_events(h, used));
            h.approvals_used = Some(used);
        }
        Some(events)
    })
    .await;
    if let Err(e) = result {
        tracing::warn!(connection = name, "recording a sign-in: {}", e.message);
    }
}

/// Applies one observation from the token path.
pub(crate) async fn apply(state: &BrokerState, observed: Observed) -> Result<(), ErrorResponse> {
    match observed {
        Observed::Ok { connection, .. } => {
            let verdict = Verdict::healthy("a token was handed out");
            update(state, &connection, |h, now| {
                (h.state != ConnectionState::Healthy).then(|| transition(h, &verdict, now))
            })
            .await?;
        }
        Observed::Failed { connection, error, .. } => {
            let verdict = verdict_auth(&error);
            // A fresh renewal failure (not one remembered from before) is a `token.renewal_failed`.
            let renewal = !matches!(*error, AuthError::BackingOff { .. });
            update(state, &connection, |h, now| {
                if h.state == verdict.state {
                    return None;
                }
                let mut events = transition(h, &verdict, now);
                h.note(HealthNote { at: now, kind: "renewal".into(), ok: false, detail: verdict.reason.clone() });
                if renewal {
                    events.push(renewal_failed(&verdict));
                }
                Some(events)
            })
            .await?;
        }
        Observed::Used { connection, at } => {
            update(state, &connection, |h, _| {
                let stale = h.last_used.is_none_or(|u| at.duration_since(u).is_ok_and(|d| d >= LAST_USED_PRECISION));
                stale.then(|| {
                    h.last_used = Some(at);
                    Vec::new()
                })
            })
            .await?;
        }
    }
    Ok(())
}

/// The `token.renewal_failed` event of a verdict.
pub(crate) fn renewal_failed(v: &Verdict) -> Event {
    Event::new("token.renewal_failed", json!({ "reason": v.reason, "fix": v.fix, "state": v.state.as_str() }))
}

/// A limit used at least this much sends `limits.near`. 80 %.
pub(crate) const LIMIT_WARN_FRACTION: f64 = 0.8;
/// Approvals of one user and app that send `approvals.near_limit`: 4 (of Salesforce's 5).
pub(crate) const APPROVALS_WARN: u32 = 4;

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

/// Applies observations until the broker stops.
pub(crate) async fn run_observer(state: BrokerState, mut rx: tokio::sync::mpsc::Receiver<Observed>) {
    while let Some(observed) = rx.recv().await {
        if let Err(e) = apply(&state, observed).await {
            tracing::warn!("updating a connection's state: {}", e.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forcelink_auth::error::OAuthError;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s)
    }

    #[test]
    fn a_revoked_grant_requires_reauthorization_with_the_catalogue_fix() {
        let e = AuthError::OAuth {
            endpoint: "https://login.salesforce.com/services/oauth2/token".into(),
            error: OAuthError::new("invalid_grant", Some("expired access/refresh token".into()), 400),
        };
        let v = verdict_auth(&e);
        assert_eq!(v.state, ConnectionState::ReauthorizationRequired);
        assert!(v.reason.contains("expired access/refresh token"), "{v:?}");
        assert_eq!(v.fix.as_deref(), Some(e.oauth().unwrap().remediation()));
    }

    #[test]
    fn an_unreachable_org_is_unhealthy_and_may_pass_by_itself() {
        let e = AuthError::Transport {
            endpoint: "https://x.my.salesforce.com".into(),
            message: "refused".into(),
            timeout: false,
        };
        let v = verdict_auth(&e);
        assert_eq!(v.state, ConnectionState::Unhealthy);
        assert!(v.fix.unwrap().contains("passes by itself"));
    }

    #[test]
    fn transitions_send_one_event_each_and_recovery_only_from_trouble() {
        let mut h = ConnectionHealth::unknown(ConnectionId::new("acme"), at(0));
        let ok = Verdict::healthy("fine");
        assert!(transition(&mut h, &ok, at(1)).is_empty(), "unknown → healthy is not news");
        assert_eq!((h.state, h.since), (ConnectionState::Healthy, at(1)));
        let bad = Verdict { state: ConnectionState::Unhealthy, reason: "HTTP 503".into(), fix: None };
        let events = transition(&mut h, &bad, at(2));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "connection.unhealthy");
        assert_eq!(events[0].data["previous_state"], "healthy");
        assert!(transition(&mut h, &bad, at(3)).is_empty(), "the same state again is not news");
        assert_eq!(h.since, at(2));
        let gone = Verdict { state: ConnectionState::ReauthorizationRequired, reason: "revoked".into(), fix: None };
        assert_eq!(transition(&mut h, &gone, at(4))[0].kind, "connection.reauthorization_required");
        assert_eq!(transition(&mut h, &ok, at(5))[0].kind, "connection.recovered");
    }

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
}
