//! Times as the API shows them: RFC 3339 in UTC, seconds precision (formatted by jiff).

use std::time::SystemTime;

use jiff::Timestamp;

/// Seconds since the Unix epoch (0 for earlier times).
pub(crate) fn epoch(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `2026-01-31T12:00:00Z`; times before 1970 show as the epoch, times past jiff's range (year
/// 9999) as its last second.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let seconds = i64::try_from(epoch(t)).unwrap_or(i64::MAX);
    let ts = Timestamp::from_second(seconds).unwrap_or(Timestamp::MAX);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }
}
