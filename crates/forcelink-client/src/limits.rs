//! `Sforce-Limit-Info`: the org's API usage, sent on every REST answer except the versions list
//! (wire reference §7), e.g. `api-usage=18/5000`, `api-usage=10018/100000; api-bursts=1/750`,
//! `per-app-api-usage=17/250(appName=sample-connected-app)`. The client keeps the latest value
//! per connection ([`crate::Client::limit_info`]).

use std::time::SystemTime;

use serde::Serialize;

/// `used/max` of one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Used so far in the current window.
    pub used: u64,
    /// The limit of the window.
    pub max: u64,
}

impl Usage {
    /// What is left of `max` (0 when over it).
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
    /// Used share, 0.0 to 1.0 (1.0 when `max` is 0).
    pub fn fraction(&self) -> f64 {
        if self.max == 0 { 1.0 } else { self.used as f64 / self.max as f64 }
    }
}

/// One parsed `Sforce-Limit-Info` header and when it arrived (client clock).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitInfo {
    /// `api-usage`: the org's daily API requests.
    pub api_usage: Option<Usage>,
    /// `api-bursts`, when sent.
    pub api_bursts: Option<Usage>,
    /// `per-app-api-usage` entries: (connected app name, usage).
    pub per_app: Vec<(String, Usage)>,
    /// When the answer carrying the header arrived, on the client's clock.
    #[serde(skip)]
    pub observed_at: SystemTime,
}

fn usage(v: &str) -> Option<Usage> {
    let (used, max) = v.trim().split_once('/')?;
    let max = max.trim();
    let max_digits = max.find(|c: char| !c.is_ascii_digit()).map_or(max, |i| &max[..i]);
    Some(Usage { used: used.trim().parse().ok()?, max: max_digits.parse().ok()? })
}

impl LimitInfo {
    /// Parses the header value; `None` when it holds no known counter.
    pub fn parse(header: &str, observed_at: SystemTime) -> Option<Self> {
        let mut info = LimitInfo { api_usage: None, api_bursts: None, per_app: Vec::new(), observed_at };
        for part in header.split([';', ',']) {
            let Some((key, value)) = part.split_once('=') else { continue };
            match key.trim().to_ascii_lowercase().as_str() {
                "api-usage" => info.api_usage = usage(value),
                "api-bursts" => info.api_bursts = usage(value),
                "per-app-api-usage" => {
                    let app = value
                        .split_once("appName=")
                        .map(|(_, a)| a.trim_end_matches(|c: char| c == ')' || c.is_whitespace()).to_owned())
                        .unwrap_or_default();
                    if let Some(u) = usage(value) {
                        info.per_app.push((app, u));
                    }
                }
                _ => {}
            }
        }
        (info.api_usage.is_some() || info.api_bursts.is_some() || !info.per_app.is_empty()).then_some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_variants() {
        let t = SystemTime::UNIX_EPOCH;
        let a = LimitInfo::parse("api-usage=18/5000", t).unwrap();
        assert_eq!(a.api_usage, Some(Usage { used: 18, max: 5000 }));
        assert_eq!(a.api_usage.unwrap().remaining(), 4982);
        let b = LimitInfo::parse("api-usage=10018/100000; api-bursts=1/750", t).unwrap();
        assert_eq!(b.api_bursts, Some(Usage { used: 1, max: 750 }));
        let c = LimitInfo::parse("per-app-api-usage=17/250(appName=sample-connected-app)", t).unwrap();
        assert_eq!(c.per_app, vec![("sample-connected-app".to_owned(), Usage { used: 17, max: 250 })]);
        assert!(LimitInfo::parse("nonsense", t).is_none());
    }
}
