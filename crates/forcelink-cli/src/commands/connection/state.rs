//! A connection's state as the broker's background checks and token hand-outs recorded it in
//! the store (`healthy`, `unhealthy`, `reauthorization_required`, `unknown`), for `connection
//! list` and `show`. The CLI only reads the record: it is the same one every broker replica
//! writes, so the CLI, the API and the page agree. The JSON field names are the broker's
//! (`GET /v1/connections/{name}`: `state`, `state_reason`, `fix`, `state_since`, `checks`), so a
//! script can read either.

use std::fmt::Write as _;

use forcelink_auth::approvals::MAX_APPROVALS_PER_USER_AND_APP;
use forcelink_store::{ConnectionHealth, ConnectionState, LimitUsage};
use serde_json::{Value, json};

use crate::commands::rfc3339;

/// The state, `unknown` when no broker has recorded one.
pub(super) fn state_of(h: Option<&ConnectionHealth>) -> ConnectionState {
    h.map(|h| h.state).unwrap_or_default()
}

/// `state`, `state_reason`, `fix` and `state_since` (null when nothing was recorded).
pub(super) fn state_fields(h: Option<&ConnectionHealth>) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("state".into(), json!(state_of(h).as_str()));
    m.insert("state_reason".into(), json!(h.and_then(|h| h.reason.clone())));
    m.insert("fix".into(), json!(h.and_then(|h| h.fix.clone())));
    m.insert("state_since".into(), json!(h.map(|h| rfc3339(h.since))));
    m
}

/// Whether a person should look at the connection.
pub(super) fn needs_attention(state: ConnectionState) -> bool {
    matches!(state, ConnectionState::Unhealthy | ConnectionState::ReauthorizationRequired)
}

fn limit_json(l: &LimitUsage) -> Value {
    json!({
        "name": l.name,
        "max": l.max,
        "remaining": l.remaining,
        "used_percent": used_percent(l),
    })
}

/// Used share in percent, to one decimal (as the broker shows it).
fn used_percent(l: &LimitUsage) -> f64 {
    (l.used_fraction() * 1000.0).round() / 10.0
}

/// What the background checks read, shaped like the broker's `checks`.
pub(super) fn checks_json(h: Option<&ConnectionHealth>) -> Value {
    json!({
        "checked_at": h.and_then(|h| h.checked_at).map(rfc3339),
        "last_used": h.and_then(|h| h.last_used).map(rfc3339),
        "token_expires_at": h.and_then(|h| h.token_expires_at).map(rfc3339),
        "approvals_used": h.and_then(|h| h.approvals_used),
        "approvals_max": MAX_APPROVALS_PER_USER_AND_APP,
        "daily_api_requests": h.and_then(|h| h.daily_api()).map(limit_json),
        "limits": h.map(|h| h.limits.iter().map(limit_json).collect::<Vec<_>>()).unwrap_or_default(),
        "recent": h.map(|h| h.notes.iter().map(|n| json!({
            "at": rfc3339(n.at),
            "kind": n.kind,
            "ok": n.ok,
            "detail": n.detail,
        })).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

/// The state and the checks as `connection show` prints them: only what is known.
pub(super) fn state_lines(h: Option<&ConnectionHealth>) -> String {
    let mut out = String::new();
    let line = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "  {label:<24}{value}");
    };
    let Some(h) = h else {
        line(&mut out, "state", "unknown (no broker has checked or used it yet)");
        return out;
    };
    line(&mut out, "state", &format!("{} since {}", h.state, rfc3339(h.since)));
    if let Some(reason) = &h.reason {
        line(&mut out, "state reason", reason);
    }
    if let Some(fix) = &h.fix {
        line(&mut out, "fix", fix);
    }
    if let Some(at) = h.checked_at {
        line(&mut out, "last check", &rfc3339(at));
    }
    if let Some(at) = h.last_used {
        line(&mut out, "last used", &rfc3339(at));
    }
    if let Some(at) = h.token_expires_at {
        line(&mut out, "token expires", &rfc3339(at));
    }
    if let Some(used) = h.approvals_used {
        line(&mut out, "approvals", &format!("{used} of {MAX_APPROVALS_PER_USER_AND_APP} used (user and app)"));
    }
    if let Some(l) = h.daily_api() {
        let used = l.max - l.remaining;
        line(&mut out, "daily API requests", &format!("{used} of {} used ({}%)", l.max, used_percent(l)));
    }
    for n in h.notes.iter().take(3) {
        let outcome = if n.ok { "ok" } else { "failed" };
        line(&mut out, &format!("{} {outcome}", n.kind), &format!("{} {}", rfc3339(n.at), n.detail));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use forcelink_auth::ConnectionId;
    use forcelink_store::HealthNote;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + seconds)
    }

    #[test]
    fn a_connection_nobody_checked_is_unknown_with_nulls_like_the_brokers_view() {
        let fields = state_fields(None);
        assert_eq!(
            Value::Object(fields),
            json!({"state": "unknown", "state_reason": null, "fix": null, "state_since": null})
        );
        assert_eq!(checks_json(None)["approvals_max"], 5);
        assert!(state_lines(None).contains("unknown"));
    }

    #[test]
    fn show_prints_the_fix_approvals_and_daily_api_usage_when_known() {
        let mut h = ConnectionHealth::unknown(ConnectionId::new("acme"), at(0));
        h.state = ConnectionState::ReauthorizationRequired;
        h.reason = Some("the refresh token was revoked".into());
        h.fix = Some("sign in again".into());
        h.approvals_used = Some(4);
        h.limits.push(LimitUsage { name: "DailyApiRequests".into(), max: 15000, remaining: 3000 });
        h.note(HealthNote { at: at(60), kind: "renewal".into(), ok: false, detail: "invalid_grant".into() });
        let text = state_lines(Some(&h));
        for part in [
            "reauthorization_required since 2026-01-01T00:00:00Z",
            "fix                     sign in again",
            "4 of 5 used",
            "12000 of 15000 used (80%)",
            "renewal failed",
        ] {
            assert!(text.contains(part), "{part:?} in\n{text}");
        }
        assert!(!text.contains("token expires"), "unknown expiry is not printed:\n{text}");
        let checks = checks_json(Some(&h));
        assert_eq!(checks["daily_api_requests"]["used_percent"], 80.0);
        assert_eq!(checks["recent"][0]["kind"], "renewal");
        assert!(needs_attention(h.state));
    }
}
