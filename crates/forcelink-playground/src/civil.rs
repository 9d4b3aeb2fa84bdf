//! Calendar arithmetic for Salesforce's date and dateTime values, in UTC. Stored and compared
//! as text in one fixed format (`2024-01-31` and `2024-01-31T09:30:00.000+0000`), which sorts
//! the same way as the instants it names.

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) const DAY_MS: i64 = 86_400_000;

pub(crate) fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2024-01-31T09:30:00.000+0000`, the form Salesforce's REST API returns.
pub(crate) fn format_datetime(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let rest = ms.rem_euclid(DAY_MS);
    let (h, mi, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{}T{h:02}:{mi:02}:{s:02}.{milli:03}+0000", format_date(days))
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// `YYYY-MM-DD` → day number.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&s[..4])?, num(&s[5..7])?, num(&s[8..10])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    // Reject 2023-02-30 and the like: the round trip must give the same date.
    (format_date(days) == s).then_some(days)
}

/// ISO 8601 date-time with `Z`, `±hh:mm` or `±hhmm`, optional fraction; also a bare date
/// (midnight UTC). Returns milliseconds since the epoch.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    if s.len() == 10 {
        return parse_date(s).map(|d| d * DAY_MS);
    }
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    let days = parse_date(date)?;
    let rest = rest.strip_prefix(['T', ' '])?;
    let (h, mi, sec) = (num(rest.get(..2)?)?, num(rest.get(3..5)?)?, num(rest.get(6..8)?)?);
    if rest.as_bytes().get(2) != Some(&b':') || rest.as_bytes().get(5) != Some(&b':') || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut tail = &rest[8..];
    let mut millis = 0;
    if let Some(frac) = tail.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = num(&padded)?;
        tail = &frac[digits..];
    }
    let offset_min = match tail {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match tail.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let t = tail[1..].replace(':', "");
            if t.len() != 4 {
                return None;
            }
            sign * (num(&t[..2])? * 60 + num(&t[2..])?)
        }
    };
    Some(days * DAY_MS + h * 3_600_000 + mi * 60_000 + sec * 1000 + millis - offset_min * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(parse_date("2024-02-29").map(format_date).as_deref(), Some("2024-02-29"));
        assert_eq!(parse_date("2023-02-29"), None);
        let ms = parse_datetime("2011-07-07T00:37:00.000+0000").unwrap();
        assert_eq!(format_datetime(ms), "2011-07-07T00:37:00.000+0000");
        assert_eq!(parse_datetime("2011-07-07T02:37:00+02:00"), Some(ms));
        assert_eq!(parse_datetime("2011-07-07T00:37:00Z"), Some(ms));
        assert_eq!(parse_datetime("2011-07-07X00:37:00Z"), None);
    }
}
