//! Latency distributions of round trips timed one by one: the median and the tail (p99)
//! the two-process benches print beside their ratios.

use std::time::{Duration, Instant};

/// The durations of single operations, in the order taken.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// Times `n` calls of `f`, one by one, and adds them.
    pub fn time(&mut self, n: u32, mut f: impl FnMut()) {
        self.samples.reserve(n as usize);
        for _ in 0..n {
            let t = Instant::now();
            f();
            self.samples.push(t.elapsed());
        }
    }

    /// How many were timed.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether none were timed.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `q` quantile (0.5: the median; 0.99: p99), nearest rank; zero when empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut l = gobs_bench::Latencies::from_samples((1..=100).rev().map(Duration::from_micros).collect());
    /// assert_eq!(l.quantile(0.5), Duration::from_micros(50));
    /// assert_eq!(l.quantile(0.99), Duration::from_micros(99));
    /// assert_eq!(l.quantile(1.0), Duration::from_micros(100));
    /// ```
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        self.samples.sort_unstable();
        let rank = (q.clamp(0.0, 1.0) * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1]
    }

    /// Samples taken elsewhere.
    pub fn from_samples(samples: Vec<Duration>) -> Self {
        Latencies { samples }
    }
}
