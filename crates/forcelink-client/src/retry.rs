//! When to try a request again: [`RetryPolicy`] (exponential backoff with jitter, honouring
//! `Retry-After`). Only idempotent requests are retried after an answer or a broken
//! connection; a create (POST) is retried only when the connection was never made, because
//! then Salesforce cannot have seen it.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// Retries after the first attempt. Defaults to 3.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Backoff before the first retry, doubled each time. Defaults to 500 ms.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest backoff between two attempts. Defaults to 30 seconds.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest `Retry-After` the client waits for; a longer one ends the request. Defaults to 2 minutes.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How requests are retried. Every default is a named constant above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// The wait before retry number `retry` (0-based): `initial × 2^retry`, capped, with "equal
    /// jitter" (a random point in the upper half) so many clients do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = self.initial_backoff.saturating_mul(1u32 << retry.min(16)).min(self.max_backoff);
        let half = base / 2;
        let jitter_ms = half.as_millis() as u64;
        let extra = if jitter_ms == 0 { 0 } else { rand::thread_rng().gen_range(0..=jitter_ms) };
        half + Duration::from_millis(extra)
    }
}

/// Reads `Retry-After`: delta seconds, or an HTTP date compared with `now`.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let p = RetryPolicy::default();
        for retry in 0..8 {
            let full = (p.initial_backoff * (1 << retry)).min(p.max_backoff);
            let b = p.backoff(retry);
            assert!(b >= full / 2 && b <= full, "retry {retry}: {b:?} outside {:?}..={full:?}", full / 2);
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("soon", now), None);
    }
}
