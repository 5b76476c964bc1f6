//! Vats on the worker pool: many idle vats, each woken by one message.
//!
//! Rows: 100,000 idle vats each sent one message and answered (total time), and the
//! memory an idle vat costs (resident set before and after starting them, from
//! `/proc/self/status`, printed; not a timing).
//! Run: `cargo bench -p gobs-runtime --bench scheduling`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use gobs_runtime::{Promise, Vat, pool};

const VATS: usize = 100_000;

/// The resident set of this process, in KiB (`VmRSS:` of `/proc/self/status`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Sends one message to every vat and waits for every answer.
fn wake_all(vats: &[Vat]) -> Duration {
    let start = Instant::now();
    let answers: Vec<Promise<usize>> = vats
        .iter()
        .enumerate()
        .map(|(i, v)| v.post(move || Ok(i)))
        .collect();
    for (i, a) in answers.into_iter().enumerate() {
        assert_eq!(a.wait().unwrap(), i);
    }
    start.elapsed()
}

fn idle_vats(c: &mut Criterion) {
    // Start the pool first, so its threads are not counted as the vats' memory.
    Vat::spawn("warm-up").unwrap().shutdown();
    let before = rss_kib();
    let start = Instant::now();
    let vats: Vec<Vat> = (0..VATS)
        .map(|i| Vat::spawn(format!("idle-{i}")).unwrap())
        .collect();
    let spawned_in = start.elapsed();
    // Every vat has run once (its start) and is idle again.
    let first = wake_all(&vats);
    let after = rss_kib();
    let per_vat = (after.saturating_sub(before) * 1024) as f64 / VATS as f64;
    println!(
        "{VATS} idle vats on {} workers: spawned in {spawned_in:?}, first wake-up of all in \
         {first:?}; RSS {before} KiB before, {after} KiB after = {per_vat:.0} bytes per idle vat",
        pool::workers()
    );

    let mut group = c.benchmark_group("idle_vats");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("100k idle vats, each sent one message", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| wake_all(&vats)).sum())
    });
    group.finish();
    println!(
        "RSS after the runs: {} KiB ({} vats running)",
        rss_kib(),
        pool::running_vats()
    );
    for v in &vats {
        v.shutdown();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    idle_vats(&mut c);
    c.final_summary();
}
