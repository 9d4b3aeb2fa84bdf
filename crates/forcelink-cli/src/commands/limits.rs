//! `forcelink limits`: the org's limits (API requests, storage…) and their use, and the API
//! usage the last answer reported (`Sforce-Limit-Info`).

use serde_json::json;

use super::ConnectionArg;
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;
use crate::settings::Settings;

/// `forcelink limits`: the org's limits, and the API usage the last answer reported.
pub async fn run(settings: &Settings, conn: ConnectionArg, all: bool) -> Result<Outcome, Failure> {
    let client = conn.client(settings).await?;
    let limits = client.limits().send().await?;
    let mut rows =
        vec![["LIMIT".to_owned(), "USED".to_owned(), "MAX".to_owned(), "REMAINING".to_owned(), "USE".to_owned()]];
    for (name, l) in &limits {
        let used = l.max - l.remaining;
        // Unused limits are noise for a person; --all (and --json) show every one.
        if !all && used <= 0 {
            continue;
        }
        let pct = if l.max > 0 { format!("{:.1}%", used as f64 * 100.0 / l.max as f64) } else { String::new() };
        rows.push([name.clone(), used.to_string(), l.max.to_string(), l.remaining.to_string(), pct]);
    }
    let mut human = output::table(&rows);
    if !all {
        human.push_str(&format!("({} limits in use of {}; --all lists every one)\n", rows.len() - 1, limits.len()));
    }
    let usage = client.limit_info().and_then(|i| i.api_usage).map(|u| json!({ "used": u.used, "max": u.max }));
    let value = json!({ "limits": serde_json::to_value(&limits).map_err(|e| Failure::failed(e.to_string()))?, "api_usage": usage });
    Ok(Outcome::new(value, human))
}
