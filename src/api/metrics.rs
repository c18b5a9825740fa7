//! Prometheus metrics: requests and latency per endpoint, check outcomes, relationship writes,
//! and the store's size and head revision (sampled when `/metrics` is scraped).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::engine::{CacheStats, Permissionship};

/// Every metric zanzi exports, in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// `zanzi_check_results_total` by answer, resolved once: has, no, conditional.
    check_answers: [IntCounter; 3],
    written: IntCounter,
    deleted: IntCounter,
    store_bytes: IntGauge,
    head_revision: IntGauge,
    cache_hits: IntGauge,
    cache_misses: IntGauge,
    cache_bytes: IntGauge,
    refused: IntCounter,
    engine_calls: IntGauge,
}

/// Why the metrics could not be set up or rendered.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "zanzi_requests_total",
                "API requests by endpoint and status code",
            ),
            &["endpoint", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "zanzi_request_duration_seconds",
                "API request latency by endpoint",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["endpoint"],
        )?;
        let checks = IntCounterVec::new(
            Opts::new(
                "zanzi_check_results_total",
                "Check answers by permissionship",
            ),
            &["permissionship"],
        )?;
        let written = IntCounter::new(
            "zanzi_relationships_written_total",
            "Relationships created, touched or deleted by writes and imports",
        )?;
        let deleted = IntCounter::new(
            "zanzi_relationships_deleted_total",
            "Relationships removed by delete-by-filter",
        )?;
        let store_bytes = IntGauge::new("zanzi_store_size_bytes", "Approximate store size")?;
        let head_revision = IntGauge::new("zanzi_head_revision", "The store's head revision")?;
        let cache_hits = IntGauge::new(
            "zanzi_check_cache_hits_total",
            "Check sub-answers served from the cache",
        )?;
        let cache_misses = IntGauge::new(
            "zanzi_check_cache_misses_total",
            "Check cache look-ups that found nothing usable",
        )?;
        let cache_bytes = IntGauge::new("zanzi_check_cache_bytes", "Estimated cache size")?;
        let refused = IntCounter::new(
            "zanzi_requests_refused_total",
            "Engine calls refused because --max-concurrent-requests were running",
        )?;
        let engine_calls = IntGauge::new(
            "zanzi_engine_calls_running",
            "Engine calls (reads and writes) running when sampled",
        )?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(engine_calls.clone()))?;
        registry.register(Box::new(cache_hits.clone()))?;
        registry.register(Box::new(cache_misses.clone()))?;
        registry.register(Box::new(cache_bytes.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(checks.clone()))?;
        registry.register(Box::new(written.clone()))?;
        registry.register(Box::new(deleted.clone()))?;
        registry.register(Box::new(store_bytes.clone()))?;
        registry.register(Box::new(head_revision.clone()))?;
        let check_answers = [
            checks.with_label_values(&["has_permission"]),
            checks.with_label_values(&["no_permission"]),
            checks.with_label_values(&["conditional"]),
        ];
        Ok(Self {
            registry,
            requests,
            latency,
            check_answers,
            written,
            deleted,
            store_bytes,
            head_revision,
            cache_hits,
            cache_misses,
            cache_bytes,
            refused,
            engine_calls,
        })
    }

    /// Records one finished request (`status`: the HTTP status code's digits).
    pub fn request(&self, endpoint: &str, status: &str, seconds: f64) {
        self.requests.with_label_values(&[endpoint, status]).inc();
        self.latency.with_label_values(&[endpoint]).observe(seconds);
    }

    /// The handles of one endpoint's request metrics, for a caller that records many
    /// requests to it (the HTTP layer keeps one per route).
    pub fn endpoint(&self, endpoint: &str) -> EndpointMetrics {
        EndpointMetrics {
            endpoint: endpoint.into(),
            requests: self.requests.clone(),
            ok: self.requests.with_label_values(&[endpoint, "200"]),
            latency: self.latency.with_label_values(&[endpoint]),
        }
    }

    /// Records a check answer.
    pub fn check_outcome(&self, answer: &Permissionship) {
        let index = match answer {
            Permissionship::Has => 0,
            Permissionship::No => 1,
            Permissionship::Conditional { .. } => 2,
        };
        self.check_answers[index].inc();
    }

    /// Records an engine call refused by the concurrency bound.
    pub fn request_refused(&self) {
        self.refused.inc();
    }

    /// Samples how many engine calls are running (before [`Metrics::render`]).
    pub fn engine_calls_running(&self, running: usize) {
        self.engine_calls
            .set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    /// Records relationships written.
    pub fn relationships_written(&self, count: usize) {
        self.written.inc_by(count as u64);
    }

    /// Records relationships deleted by filter.
    pub fn relationships_deleted(&self, count: usize) {
        self.deleted.inc_by(count as u64);
    }

    /// The text exposition, after sampling the store's size, head revision and cache counters.
    pub fn render(
        &self,
        store_bytes: u64,
        head_revision: u64,
        cache: &CacheStats,
    ) -> Result<String, MetricsError> {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.cache_hits.set(gauge(cache.hits));
        self.cache_misses.set(gauge(cache.misses));
        self.cache_bytes.set(gauge(cache.bytes));
        self.store_bytes
            .set(i64::try_from(store_bytes).unwrap_or(i64::MAX));
        self.head_revision
            .set(i64::try_from(head_revision).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// One endpoint's request counter (for status 200, the common case) and latency histogram,
/// resolved once; other statuses go through the labelled family.
#[derive(Debug, Clone)]
pub struct EndpointMetrics {
    endpoint: Box<str>,
    requests: IntCounterVec,
    ok: IntCounter,
    latency: Histogram,
}

impl EndpointMetrics {
    /// Records one finished request (`code` and `status`: the HTTP status as a number and as
    /// its digits), as [`Metrics::request`] would.
    pub fn record(&self, code: u16, status: &str, seconds: f64) {
        if code == 200 {
            self.ok.inc();
        } else {
            self.requests
                .with_label_values(&[&*self.endpoint, status])
                .inc();
        }
        self.latency.observe(seconds);
    }
}
