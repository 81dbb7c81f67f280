//! Percentiles of per-request times, as the page benchmarks print them.

use std::time::Duration;

/// p50, p99, mean and max of a run, in milliseconds.
pub struct Summary {
    pub p50: f64,
    pub p99: f64,
    pub mean: f64,
    pub max: f64,
}

/// The summary of `times` (at least one).
pub fn summarize(mut times: Vec<Duration>) -> Summary {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |p: f64| ms(times[((times.len() as f64 * p) as usize).min(times.len() - 1)]);
    Summary {
        p50: pct(0.50),
        p99: pct(0.99),
        mean: ms(times.iter().sum::<Duration>() / times.len() as u32),
        max: ms(*times.last().expect("at least one time")),
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:>8.3} ms  p99 {:>8.3} ms  mean {:>8.3} ms  max {:>8.3} ms",
            self.p50, self.p99, self.mean, self.max
        )
    }
}
