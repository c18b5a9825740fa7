//! Timing: warm up, time each call, and report the median and 99th percentile.

use std::time::{Duration, Instant};

/// Sorted call durations.
#[derive(Debug, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Wraps durations measured elsewhere (e.g. the batches of a load).
    pub fn from_durations(mut durations: Vec<Duration>) -> Self {
        durations.sort();
        Self(durations)
    }

    /// The nearest-rank percentile `p` (0 < p ≤ 100).
    pub fn percentile(&self, p: usize) -> Duration {
        let n = self.0.len();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = (n * p).div_ceil(100).clamp(1, n);
        self.0.get(rank - 1).copied().unwrap_or_default()
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.percentile(50)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.percentile(99)
    }

    /// The sum of all durations.
    pub fn total(&self) -> Duration {
        self.0.iter().sum()
    }
}

/// Calls `f(0..warmup)` untimed, then times `f(warmup..warmup + count)` one call at a time.
/// The index lets callers cycle through a query list in the same order on every side, or
/// pick a fresh relationship per write.
pub fn time(
    warmup: usize,
    count: usize,
    mut f: impl FnMut(usize) -> Result<(), String>,
) -> Result<Samples, String> {
    for i in 0..warmup {
        f(i)?;
    }
    let mut durations = Vec::with_capacity(count);
    for i in warmup..warmup + count {
        let start = Instant::now();
        f(i)?;
        durations.push(start.elapsed());
    }
    Ok(Samples::from_durations(durations))
}

/// `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`: three significant digits.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos() as f64;
    let (value, unit) = if nanos < 1e3 {
        (nanos, "ns")
    } else if nanos < 1e6 {
        (nanos / 1e3, "µs")
    } else if nanos < 1e9 {
        (nanos / 1e6, "ms")
    } else {
        (nanos / 1e9, "s")
    };
    if value >= 100.0 {
        format!("{value:.0} {unit}")
    } else if value >= 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

/// `SpiceDB p50 / zanzi p50`, written like `12.3x`.
pub fn format_ratio(spicedb: Duration, zanzi: Duration) -> String {
    if zanzi.is_zero() {
        return "n/a".to_string();
    }
    format!("{:.1}x", spicedb.as_secs_f64() / zanzi.as_secs_f64())
}
