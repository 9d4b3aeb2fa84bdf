//! The broker's counters: broker-wide and per connection, kept where they are counted (atomics)
//! and read by [`crate::metrics`] and the connection answers. A leaf module: it depends on nothing
//! else in the crate.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

/// Upper bounds (seconds) of the proxy latency histogram.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Broker-wide counters (shown by [`crate::metrics`]).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Requests refused for a missing, unknown or revoked API key (401).
    pub unauthorized: Counter,
    /// Requests refused for a key without the scope or the connection (403).
    pub forbidden: Counter,
    /// Salesforce events read by this replica's subscription consumers.
    pub events_received: Counter,
    /// Of those, left out by a filter or echo suppression.
    pub events_skipped: Counter,
    /// Subscription deliveries (events and snapshot rows) receivers accepted from this replica.
    pub events_delivered: Counter,
}

/// One connection's counters (shown by [`crate::metrics`] and in the connection's `usage`).
#[derive(Debug)]
pub(crate) struct ConnectionCounters {
    /// Tokens handed out by `GET …/token`.
    pub tokens: Counter,
    /// Requests proxied to Salesforce (that got an answer).
    pub proxied: Counter,
    /// Proxied requests that got no answer.
    pub proxy_errors: Counter,
    /// Actions run.
    pub actions: Counter,
    /// Seconds until a proxied answer's headers arrived ([`LATENCY_BUCKETS`]).
    pub proxy_latency: Histogram,
}

impl Default for ConnectionCounters {
    fn default() -> Self {
        Self {
            tokens: Counter::default(),
            proxied: Counter::default(),
            proxy_errors: Counter::default(),
            actions: Counter::default(),
            proxy_latency: Histogram::new(LATENCY_BUCKETS),
        }
    }
}

impl ConnectionCounters {
    /// Records the time until a proxied answer's headers arrived.
    pub(crate) fn observe_proxy_latency(&self, d: Duration) {
        self.proxy_latency.observe(d.as_secs_f64());
    }
}
