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

/// `2026-01-31T12:00:00.250Z`: RFC 3339 in UTC with milliseconds (webhook timestamps).
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    let ms = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let ts = Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or(Timestamp::MAX);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A time as milliseconds since the epoch in serde (records the broker keeps in its store).
pub(crate) mod epoch_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(UNIX_EPOCH + Duration::from_millis(u64::deserialize(d)?))
    }
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
