//! Counters and latency histograms, rendered as Prometheus text for
//! `omen-serve --metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use omen_engine::index::QueryStats;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Process-wide counters; every field is updated lock-free.
#[derive(Debug, Default)]
pub struct Metrics {
    queries: AtomicU64,
    errors: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_us: AtomicU64,
    searches: AtomicU64,
    pages_read: AtomicU64,
    bytes_read: AtomicU64,
    connections_total: AtomicU64,
    connections_open: AtomicU64,
    auth_failures: AtomicU64,
}

impl Metrics {
    /// One statement finished after `elapsed`.
    pub fn record_query(&self, elapsed: Duration, ok: bool) {
        self.queries.fetch_add(1, Relaxed);
        if !ok {
            self.errors.fetch_add(1, Relaxed);
        }
        let s = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| s <= b) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_sum_us
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// An error outside statement execution (protocol, bad parameter).
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    /// What one search read from disk.
    pub fn record_search(&self, stats: &QueryStats) {
        self.searches.fetch_add(1, Relaxed);
        self.pages_read
            .fetch_add(u64::from(stats.pages_read), Relaxed);
        self.bytes_read.fetch_add(stats.bytes_read, Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections_total.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    pub fn auth_failed(&self) {
        self.auth_failures.fetch_add(1, Relaxed);
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> u64 {
        self.connections_open.load(Relaxed)
    }

    /// Statements run so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Relaxed)
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut t = String::new();
        let mut counter = |name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(t, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        counter(
            "omen_queries_total",
            "Statements executed.",
            "counter",
            self.queries.load(Relaxed),
        );
        counter(
            "omen_errors_total",
            "Statements and protocol messages that failed.",
            "counter",
            self.errors.load(Relaxed),
        );
        counter(
            "omen_searches_total",
            "Nearest-neighbour searches run.",
            "counter",
            self.searches.load(Relaxed),
        );
        counter(
            "omen_disk_pages_read_total",
            "4 KiB segment pages read by searches.",
            "counter",
            self.pages_read.load(Relaxed),
        );
        counter(
            "omen_disk_bytes_read_total",
            "Bytes read from segment files by searches.",
            "counter",
            self.bytes_read.load(Relaxed),
        );
        counter(
            "omen_connections_total",
            "Client connections accepted.",
            "counter",
            self.connections_total.load(Relaxed),
        );
        counter(
            "omen_connections_open",
            "Client connections open now.",
            "gauge",
            self.connections_open.load(Relaxed),
        );
        counter(
            "omen_auth_failures_total",
            "Failed logins.",
            "counter",
            self.auth_failures.load(Relaxed),
        );
        let _ = writeln!(
            t,
            "# HELP omen_query_duration_seconds Statement latency.\n# TYPE omen_query_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (b, c) in BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(
                t,
                "omen_query_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        let total = self.queries.load(Relaxed);
        let _ = writeln!(
            t,
            "omen_query_duration_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            t,
            "omen_query_duration_seconds_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(t, "omen_query_duration_seconds_count {total}");
        t
    }
}
