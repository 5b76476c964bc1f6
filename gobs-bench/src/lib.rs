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
