//! Vats are tasks on a fixed pool of worker threads: many idle vats cost no thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::actor_lib::Cell;
use gobs_runtime::{Promise, Vat, pool};

/// The `Threads:` line of this process's `/proc/self/status`.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_hundred_thousand_idle_vats_each_answer_one_message() {
    const VATS: usize = 100_000;
    let vats: Vec<Vat> = (0..VATS)
        .map(|i| Vat::spawn(format!("idle-{i}")).unwrap())
        .collect();
    let threads_with_vats = threads();
    let answers: Vec<Promise<usize>> = vats
        .iter()
        .enumerate()
        .map(|(i, v)| v.post(move || Ok(i * 2)))
        .collect();
    for (i, a) in answers.into_iter().enumerate() {
        assert_eq!(a.wait().unwrap(), i * 2);
    }
    // The vats are idle again: none holds a thread of its own.
    assert!(
        threads_with_vats <= pool::workers() + 64,
        "{threads_with_vats} threads for {VATS} vats and {} workers",
        pool::workers()
    );
    assert!(vats.iter().all(|v| !v.is_stopped()));
    for v in &vats {
        v.shutdown();
    }
    assert!(vats.iter().all(Vat::is_stopped));
}

#[test]
fn vats_share_the_workers_and_keep_their_semantics() {
    let vats: Vec<Vat> = (0..1_000)
        .map(|i| Vat::spawn(format!("shared-{i}")).unwrap())
        .collect();
    let cells: Vec<_> = vats
        .iter()
        .map(|v| v.spawn_actor(Cell::new(0.into())).unwrap())
        .collect();
    // Per-pair order across vats on one or several workers: each cell sees 1..=50 in order.
    let last: Vec<_> = cells
        .iter()
        .map(|c| {
            let mut p = None;
            for n in 1..=50i64 {
                p = Some(c.send().set(n.into()));
            }
            p.unwrap()
        })
        .collect();
    for p in last {
        p.wait().unwrap();
    }
    for c in &cells {
        assert_eq!(c.send().get().wait().unwrap(), 50i64.into());
    }
    for v in &vats {
        v.shutdown();
    }
}
