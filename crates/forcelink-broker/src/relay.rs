//! What the event relay keeps beside the broker's state: the consumers' reports on this
//! replica ([`EventsState`], [`Report`]), the defaults of its settings, and the
//! `Sforce-Call-Options` header that names the broker on its Salesforce calls. A leaf module:
//! it depends on nothing else in the crate but `time`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::rfc3339;

/// [`BrokerConfig::event_lease`](crate::BrokerConfig::event_lease): 15 s.
pub const DEFAULT_EVENT_LEASE: Duration = Duration::from_secs(15);
/// [`BrokerConfig::event_retry`](crate::BrokerConfig::event_retry): 1 s.
pub const DEFAULT_EVENT_RETRY: Duration = Duration::from_secs(1);
/// [`BrokerConfig::call_client`](crate::BrokerConfig::call_client): `forcelink-broker`.
pub const DEFAULT_CALL_CLIENT: &str = "forcelink-broker";

/// What a subscription's consumer last reported (kept as JSON in the store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct Report {
    /// `snapshot`, `streaming`, `retrying`, or `stopped` (paused).
    pub phase: String,
    /// The replica running the consumer.
    pub holder: String,
    /// What went wrong last, when something did.
    pub error: Option<String>,
    /// What to do about it.
    pub fix: Option<String>,
    /// Events received from Salesforce by this consumer run.
    pub received: u64,
    /// Events left out by the filter or echo suppression in this run.
    pub skipped: u64,
    /// Snapshot rows put in the outbox.
    pub snapshot_rows: u64,
    /// The snapshot's Bulk 2.0 job id.
    pub snapshot_job: Option<String>,
    /// When the last event arrived (RFC 3339).
    pub last_event_at: Option<String>,
}

/// The consumers' reports on this replica, written to the store when they change (at most once
/// a second for event counts).
#[derive(Debug, Default)]
pub(crate) struct EventsState {
    // Subscription id → its report and whether it changed since it was written.
    reports: Mutex<HashMap<String, (Report, bool)>>,
}

impl EventsState {
    /// Changes the report of `id`; the new report.
    pub(crate) fn update(&self, id: &str, change: impl FnOnce(&mut Report)) -> Report {
        let mut reports = self.reports.lock();
        let slot = reports.entry(id.to_owned()).or_default();
        change(&mut slot.0);
        slot.1 = false;
        slot.0.clone()
    }

    /// Counts an event received (`kept` or skipped by the filter).
    pub(crate) fn note(&self, id: &str, kept: bool, at: SystemTime) {
        let mut reports = self.reports.lock();
        let slot = reports.entry(id.to_owned()).or_default();
        slot.0.received += 1;
        if !kept {
            slot.0.skipped += 1;
        }
        slot.0.last_event_at = Some(rfc3339(at));
        slot.1 = true;
    }

    /// Whether the report of `id` changed since it was written (and marks it written).
    pub(crate) fn take_dirty(&self, id: &str) -> bool {
        self.reports.lock().get_mut(id).is_some_and(|slot| std::mem::replace(&mut slot.1, false))
    }
}

/// `Sforce-Call-Options: client=<id>` as default headers; the id is checked (letters, digits,
/// `-`, `_`, `.`, at most 40).
pub(crate) fn call_options_header(client: &str) -> Result<reqwest::header::HeaderMap, String> {
    let ok = !client.is_empty()
        && client.len() <= 40
        && client.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(format!(
            "the call client id {:?} is not valid: use up to 40 letters, digits, '-', '_' or '.'",
            client.chars().take(60).collect::<String>()
        ));
    }
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("client={client}"))
        .map_err(|e| format!("the call client id: {e}"))?;
    headers.insert("sforce-call-options", value);
    Ok(headers)
}
