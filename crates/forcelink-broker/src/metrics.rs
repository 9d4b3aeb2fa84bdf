//! `/metrics` in the OpenMetrics text format (prometheus-client): token renewals, failures and
//! cache hits (from each connection's cache), token hand-outs, proxied requests with their
//! latency, actions, and refused API keys. Every family carries a `connection` label except the
//! refusals (`status`: 401 or 403).
//!
//! The values live where they are counted — the connection's [`crate::state::Entry`] (its
//! cache's stats and [`crate::state::ConnectionCounters`]) and [`crate::state::Metrics`] — so a
//! scrape reads them through a [`Collector`] instead of keeping a second copy in a registry.
//! Counters are named without `_total`: the encoder appends it, so the samples keep their names
//! (`forcelink_token_renewals_total{connection="prod"} 3`).

use std::fmt::{self, Write};

use forcelink_auth::CacheStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelValue, EncodeMetric, LabelValueEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Registry;

use crate::state::BrokerState;

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value with `\`, `"` and newlines escaped, as the text format requires (the encoder
/// writes values as they are).
#[derive(Debug)]
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        encoder.write_str(&self.0.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
    }
}

/// Reads the broker's counters at scrape time.
#[derive(Debug)]
struct Counters(BrokerState);

/// One counter family: `name` with a value per connection.
fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (String, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (connection, value) in values {
        let labels = [("connection", Escaped(&connection))];
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Counters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let entries = self.0.entries();
        let stats: Vec<(String, CacheStats)> = entries.iter().map(|(n, e)| (n.clone(), e.cache.stats())).collect();
        let from_cache = |f: fn(&CacheStats) -> u64| stats.iter().map(move |(n, s)| (n.clone(), f(s)));
        let from_counters = |f: fn(&crate::state::ConnectionCounters) -> u64| {
            entries.iter().map(move |(n, e)| (n.clone(), f(&e.counters)))
        };
        counter_family(
            &mut encoder,
            "forcelink_token_renewals",
            "Token requests to Salesforce that succeeded.",
            from_cache(|s| s.renewals),
        )?;
        counter_family(
            &mut encoder,
            "forcelink_token_renewal_failures",
            "Token requests to Salesforce that failed.",
            from_cache(|s| s.failures),
        )?;
        counter_family(
            &mut encoder,
            "forcelink_token_cache_hits",
            "Tokens answered from memory.",
            from_cache(|s| s.hits),
        )?;
        counter_family(
            &mut encoder,
            "forcelink_token_adopted",
            "Renewals avoided because another process or replica had already renewed.",
            from_cache(|s| s.adopted),
        )?;
        counter_family(
            &mut encoder,
            "forcelink_tokens_handed_out",
            "Tokens handed out by GET /v1/connections/{name}/token.",
            from_counters(|c| c.tokens.get()),
        )?;
        counter_family(
            &mut encoder,
            "forcelink_proxy_requests",
            "Requests proxied to Salesforce.",
            from_counters(|c| c.proxied.get()),
        )?;
        counter_family(
            &mut encoder,
            "forcelink_proxy_errors",
            "Proxied requests that got no answer from Salesforce.",
            from_counters(|c| c.proxy_errors.get()),
        )?;
        counter_family(&mut encoder, "forcelink_actions", "Actions run.", from_counters(|c| c.actions.get()))?;
        let mut latency = encoder.encode_descriptor(
            "forcelink_proxy_latency_seconds",
            "Time until Salesforce's answer headers arrived.",
            None,
            MetricType::Histogram,
        )?;
        for (connection, entry) in &entries {
            let labels = [("connection", Escaped(connection))];
            entry.counters.proxy_latency.encode(latency.encode_family(&labels)?)?;
        }
        let metrics = self.0.metrics();
        let mut refusals = encoder.encode_descriptor(
            "forcelink_api_key_refusals",
            "Requests refused for a missing or wrong API key (401) or scope (403).",
            None,
            MetricType::Counter,
        )?;
        for (status, counter) in [("401", &metrics.unauthorized), ("403", &metrics.forbidden)] {
            counter.encode(refusals.encode_family(&[("status", status)])?)?;
        }
        let mut relayed = encoder.encode_descriptor(
            "forcelink_events",
            "Salesforce events this replica's subscription consumers received, skipped (filter, echo) and delivered.",
            None,
            MetricType::Counter,
        )?;
        for (outcome, counter) in [
            ("received", &metrics.events_received),
            ("skipped", &metrics.events_skipped),
            ("delivered", &metrics.events_delivered),
        ] {
            counter.encode(relayed.encode_family(&[("outcome", outcome)])?)?;
        }
        Ok(())
    }
}

/// The whole exposition text, ending with `# EOF`.
pub(crate) fn render(state: &BrokerState) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Counters(state.clone())));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}
