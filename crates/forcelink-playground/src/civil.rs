//! Salesforce's date and dateTime values in UTC, over `jiff`'s calendar. Stored and compared as
//! text in one fixed format (`2024-01-31` and `2024-01-31T09:30:00.000+0000`), which sorts the
//! same way as the instants it names; computed with as day numbers (days since 1970-01-01) and
//! milliseconds since the epoch.
//!
//! The parsers are stricter than ISO 8601 on purpose (Salesforce's grammar: seconds required,
//! four-digit years): the shape is read here, the calendar (month lengths, leap years) is jiff's.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The calendar date of a day number (`None` outside jiff's range, ±9999 years).
pub(crate) fn date_of_day(days: i64) -> Option<Date> {
    Some(Timestamp::from_millisecond(days.checked_mul(DAY_MS)?).ok()?.to_zoned(TimeZone::UTC).date())
}

/// The day number of a calendar date.
pub(crate) fn day_of(date: Date) -> Option<i64> {
    let ms = date.to_zoned(TimeZone::UTC).ok()?.timestamp().as_millisecond();
    Some(ms.div_euclid(DAY_MS))
}

/// `2024-01-31`.
pub(crate) fn format_date(days: i64) -> String {
    match date_of_day(days) {
        Some(d) => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        // Outside ±9999 years: no record can hold such a date (the parsers refuse it).
        None => String::new(),
    }
}

/// `2024-01-31T09:30:00.000+0000`, the form Salesforce's REST API returns.
pub(crate) fn format_datetime(ms: i64) -> String {
    let Ok(ts) = Timestamp::from_millisecond(ms) else { return String::new() };
    let t = ts.to_zoned(TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The first day of the month `months` after (or before) the month of `day`.
pub(crate) fn month_start(day: i64, months: i64) -> Option<i64> {
    let first = date_of_day(day)?.first_of_month();
    day_of(first.checked_add(months.months()).ok()?)
}

/// The first day of the year `years` after (or before) the year of `day`.
pub(crate) fn year_start(day: i64, years: i64) -> Option<i64> {
    let first = date_of_day(day)?.first_of_year();
    day_of(first.checked_add(years.years()).ok()?)
}

/// The Sunday that starts the week of `day` (Salesforce's default locale starts weeks on Sunday).
pub(crate) fn week_start(day: i64) -> Option<i64> {
    let offset = date_of_day(day)?.weekday().to_sunday_zero_offset();
    Some(day - i64::from(offset))
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
    // jiff refuses 2023-02-30 and the like.
    day_of(Date::new(i16::try_from(y).ok()?, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()?)
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

    #[test]
    fn month_year_and_week_starts_cross_year_ends() {
        let day = parse_date("2024-12-15").unwrap();
        assert_eq!(month_start(day, 1).map(format_date).as_deref(), Some("2025-01-01"));
        assert_eq!(month_start(day, -12).map(format_date).as_deref(), Some("2023-12-01"));
        assert_eq!(year_start(day, -1).map(format_date).as_deref(), Some("2023-01-01"));
        // 2024-12-15 is a Sunday; 2025-01-01 a Wednesday.
        assert_eq!(week_start(day).map(format_date).as_deref(), Some("2024-12-15"));
        assert_eq!(week_start(parse_date("2025-01-01").unwrap()).map(format_date).as_deref(), Some("2024-12-29"));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
    }
}
