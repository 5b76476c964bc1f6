//! Shared bookkeeping for gobs' benchmarks beside peer runtimes.
//!
//! The benches in `gobs-bench/benches/` run gobs and its peers (ractor, kameo) on the same
//! rows in one run. Each sample is recorded here as nanoseconds per operation; at the end
//! [`Samples::table`] prints a Markdown table with the median of every runtime and, per
//! row, how gobs compares with the *faster* peer. The peers live in this crate, not in
//! `gobs-runtime`'s dev-dependencies, so that building or testing the runtime never
//! compiles them.
//!
//! The two-process benches (`rpc`, `goblins`) also time round trips one by one
//! ([`Latencies`]) and count the context switches of both processes ([`Switches`]).

mod latency;
mod switches;

pub use latency::Latencies;
pub use switches::{Counts, Switches, context_switches};

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The runtime a sample belongs to: gobs itself or one of its peers.
pub const GOBS: &str = "gobs";

/// Samples of many rows and runtimes, in nanoseconds per operation.
///
/// ```
/// use std::time::Duration;
/// use gobs_bench::{GOBS, Samples};
/// let samples = Samples::new(&["ractor", "kameo"]);
/// samples.record("send", GOBS, Duration::from_nanos(100), 1);
/// samples.record("send", "ractor", Duration::from_nanos(300), 1);
/// samples.record("send", "kameo", Duration::from_nanos(200), 1);
/// let table = samples.table();
/// assert!(table.contains("| send | 100.0 | 300.0 | 200.0 | kameo | 2.00x |"), "{table}");
/// ```
#[derive(Debug)]
pub struct Samples {
    peers: &'static [&'static str],
    by_row: Mutex<BTreeMap<(usize, &'static str), Row>>,
}

#[derive(Debug, Default)]
struct Row {
    name: &'static str,
    values: BTreeMap<&'static str, Vec<f64>>,
}

impl Samples {
    /// An empty record for gobs beside `peers` (their names, in table order).
    pub const fn new(peers: &'static [&'static str]) -> Self {
        Samples {
            peers,
            by_row: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records that `who` did `ops` operations of `row` in `elapsed`; returns `elapsed`
    /// (for criterion's `iter_custom`). Rows print in the order first recorded.
    pub fn record(
        &self,
        row: &'static str,
        who: &'static str,
        elapsed: Duration,
        ops: u64,
    ) -> Duration {
        let per_op = elapsed.as_nanos() as f64 / ops.max(1) as f64;
        let mut rows = self
            .by_row
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let order = rows
            .keys()
            .find(|(_, name)| *name == row)
            .map(|(i, _)| *i)
            .unwrap_or(rows.len());
        let entry = rows.entry((order, row)).or_default();
        entry.name = row;
        entry.values.entry(who).or_default().push(per_op);
        elapsed
    }

    /// The table: per row, each runtime's median (ns/op), the faster peer, and
    /// `faster peer / gobs` (above 1 means gobs is faster).
    pub fn table(&self) -> String {
        let mut rows = self
            .by_row
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::from("| row | gobs");
        for p in self.peers {
            out.push_str(&format!(" | {p}"));
        }
        out.push_str(" | faster peer | faster peer / gobs |\n| --- | ---:");
        for _ in self.peers {
            out.push_str(" | ---:");
        }
        out.push_str(" | --- | ---: |\n");
        for row in rows.values_mut() {
            let mut median_of = |who: &str| row.values.get_mut(who).map(|v| median(v));
            let gobs = median_of(GOBS);
            let peers: Vec<Option<f64>> = self.peers.iter().map(|p| median_of(p)).collect();
            let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
            out.push_str(&format!("| {} | {}", row.name, cell(gobs)));
            for v in &peers {
                out.push_str(&format!(" | {}", cell(*v)));
            }
            let best = self
                .peers
                .iter()
                .zip(&peers)
                .filter_map(|(p, v)| v.map(|v| (*p, v)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match (gobs, best) {
                (Some(g), Some((p, v))) if g > 0.0 => {
                    out.push_str(&format!(" | {p} | {:.2}x |\n", v / g));
                }
                _ => out.push_str(" | – | – |\n"),
            }
        }
        out
    }
}

/// What a row of [`Samples`] must show, checked by [`Samples::goals`].
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// The faster peer takes at least this many times as long as gobs.
    TimesFaster(f64),
    /// gobs takes at most this many nanoseconds per operation.
    AtMostNs(f64),
}

impl Samples {
    /// Per row of `goals`: the goal, where the row stands, and `met` or `MISSED`, so that
    /// a regression shows in the run that has it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gobs_bench::{GOBS, Goal, Samples};
    /// let samples = Samples::new(&["ractor"]);
    /// samples.record("send", GOBS, Duration::from_nanos(100), 1);
    /// samples.record("send", "ractor", Duration::from_nanos(150), 1);
    /// samples.record("call", GOBS, Duration::from_nanos(12), 1);
    /// let goals = samples.goals(&[("send", Goal::TimesFaster(2.0)), ("call", Goal::AtMostNs(15.0))]);
    /// assert!(goals.contains("| send | ≥ 2.00x | 1.50x | MISSED |"), "{goals}");
    /// assert!(goals.contains("| call | ≤ 15.0 ns | 12.0 ns | met |"), "{goals}");
    /// ```
    pub fn goals(&self, goals: &[(&str, Goal)]) -> String {
        let mut rows = self
            .by_row
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::from("| row | goal | now | |\n| --- | --- | ---: | --- |\n");
        for (name, goal) in goals {
            let row = rows.values_mut().find(|r| r.name == *name);
            let gobs = row
                .as_ref()
                .and_then(|r| r.values.get(GOBS))
                .map(|v| median(&mut v.clone()));
            let best_peer = row.as_ref().and_then(|r| {
                self.peers
                    .iter()
                    .filter_map(|p| r.values.get(p).map(|v| median(&mut v.clone())))
                    .min_by(f64::total_cmp)
            });
            let (wanted, now) = match *goal {
                Goal::TimesFaster(x) => (
                    format!("≥ {x:.2}x"),
                    gobs.zip(best_peer).map(|(g, p)| (p / g, p / g >= x)),
                ),
                Goal::AtMostNs(x) => (format!("≤ {x:.1} ns"), gobs.map(|g| (g, g <= x))),
            };
            let unit = |v: f64| match goal {
                Goal::TimesFaster(_) => format!("{v:.2}x"),
                Goal::AtMostNs(_) => format!("{v:.1} ns"),
            };
            match now {
                Some((v, true)) => {
                    out.push_str(&format!("| {name} | {wanted} | {} | met |\n", unit(v)))
                }
                Some((v, false)) => {
                    out.push_str(&format!("| {name} | {wanted} | {} | MISSED |\n", unit(v)))
                }
                None => out.push_str(&format!("| {name} | {wanted} | – | not measured |\n")),
            }
        }
        out
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Mean time of one `f` over `n` calls, the best of 5 batches: for the ratio tables the
/// benches print after criterion's timings, each row measured back to back with its
/// peer in the same run.
pub fn per_op(n: u32, mut f: impl FnMut()) -> std::time::Duration {
    (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed() / n.max(1)
        })
        .min()
        .unwrap_or_default()
}
