//! `/metrics` in the Prometheus text format: token renewals, failures and cache hits (from each
//! connection's cache), token hand-outs, proxied requests with their latency, actions, and
//! refused API keys.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::state::{BrokerState, LATENCY_BUCKETS};

fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole exposition text.
pub fn render(state: &BrokerState) -> String {
    let mut out = String::new();
    let entries = state.entries();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let per = |f: &dyn Fn(&crate::state::Entry) -> u64| -> Vec<(String, String)> {
        entries.iter().map(|(n, e)| (format!("{{connection=\"{}\"}}", label(n)), f(e).to_string())).collect()
    };
    family(
        "forcelink_token_renewals_total",
        "counter",
        "Token requests to Salesforce that succeeded.",
        per(&|e| e.cache.stats().renewals),
    );
    family(
        "forcelink_token_renewal_failures_total",
        "counter",
        "Token requests to Salesforce that failed.",
        per(&|e| e.cache.stats().failures),
    );
    family(
        "forcelink_token_cache_hits_total",
        "counter",
        "Tokens answered from memory.",
        per(&|e| e.cache.stats().hits),
    );
    family(
        "forcelink_token_adopted_total",
        "counter",
        "Renewals avoided because another process or replica had already renewed.",
        per(&|e| e.cache.stats().adopted),
    );
    family(
        "forcelink_tokens_handed_out_total",
        "counter",
        "Tokens handed out by GET /v1/connections/{name}/token.",
        per(&|e| e.counters.tokens.load(Ordering::Relaxed)),
    );
    family(
        "forcelink_proxy_requests_total",
        "counter",
        "Requests proxied to Salesforce.",
        per(&|e| e.counters.proxied.load(Ordering::Relaxed)),
    );
    family(
        "forcelink_proxy_errors_total",
        "counter",
        "Proxied requests that got no answer from Salesforce.",
        per(&|e| e.counters.proxy_errors.load(Ordering::Relaxed)),
    );
    family("forcelink_actions_total", "counter", "Actions run.", per(&|e| e.counters.actions.load(Ordering::Relaxed)));
    let mut hist = Vec::new();
    for (n, e) in &entries {
        let c = &e.counters;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            hist.push((
                format!("_bucket{{connection=\"{}\",le=\"{bound}\"}}", label(n)),
                c.latency_buckets[i].load(Ordering::Relaxed).to_string(),
            ));
        }
        let count = c.latency_count.load(Ordering::Relaxed).to_string();
        hist.push((format!("_bucket{{connection=\"{}\",le=\"+Inf\"}}", label(n)), count.clone()));
        let sum = c.latency_micros_sum.load(Ordering::Relaxed) as f64 / 1e6;
        hist.push((format!("_sum{{connection=\"{}\"}}", label(n)), format!("{sum}")));
        hist.push((format!("_count{{connection=\"{}\"}}", label(n)), count));
    }
    let _ = writeln!(
        out,
        "# HELP forcelink_proxy_latency_seconds Time until Salesforce's answer headers arrived.\n\
         # TYPE forcelink_proxy_latency_seconds histogram"
    );
    for (suffix, value) in hist {
        let _ = writeln!(out, "forcelink_proxy_latency_seconds{suffix} {value}");
    }
    let m = state.metrics();
    let _ = writeln!(
        out,
        "# HELP forcelink_api_key_refusals_total Requests refused for a missing or wrong API key (401) or scope (403).\n\
         # TYPE forcelink_api_key_refusals_total counter\n\
         forcelink_api_key_refusals_total{{status=\"401\"}} {}\n\
         forcelink_api_key_refusals_total{{status=\"403\"}} {}",
        m.unauthorized.load(Ordering::Relaxed),
        m.forbidden.load(Ordering::Relaxed)
    );
    out
}
