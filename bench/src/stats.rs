//! Summaries of timed samples: nearest-rank percentiles, in milliseconds.

use std::time::Duration;

use serde::Serialize;

/// The spread of one set of timings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub samples: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// None for no samples.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        let mut sorted: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        sorted.sort_by(f64::total_cmp);
        let last = *sorted.last()?;
        let rank = |p: f64| sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Some(Summary {
            samples: sorted.len(),
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            max_ms: last,
        })
    }
}

/// `a / b`, rounded to two places, as budgets are stated.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b <= 0.0 { f64::INFINITY } else { (a / b * 100.0).round() / 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let summary = Summary::of(&ms(&(1..=100).rev().collect::<Vec<_>>())).unwrap();
        assert_eq!((summary.p50_ms, summary.p90_ms, summary.p99_ms, summary.max_ms), (50.0, 90.0, 99.0, 100.0));
        let twenty = Summary::of(&ms(&(1..=20).collect::<Vec<_>>())).unwrap();
        assert_eq!((twenty.p50_ms, twenty.p90_ms), (10.0, 18.0));
        assert_eq!(Summary::of(&ms(&[7])).unwrap().p99_ms, 7.0);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn ratios_are_rounded_and_a_zero_base_is_infinite() {
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert_eq!(ratio(1.0, 3.0), 0.33);
        assert!(ratio(1.0, 0.0).is_infinite());
    }
}
