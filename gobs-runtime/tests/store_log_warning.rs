//! The warning a log store gives when it cuts a torn tail.
//!
//! In a test binary of its own: tracing caches per call site whether anyone listens, and
//! other tests hitting the same call site from other threads at the same time can leave a
//! scoped subscriber deaf to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture;
mod common;

use capture::Capture;
use common::delta;
use gobs_runtime::store::{LogOptions, LogStore};

#[test]
fn log_store_warns_how_much_it_cut_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vat.log");
    let mut store = LogStore::open(&path, LogOptions::default()).unwrap();
    let mut ends = vec![0];
    for i in 1..=6 {
        store.commit(&delta(i)).unwrap();
        ends.push(store.stats().file_bytes);
    }
    drop(store);
    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, &good[..good.len() - 4]).unwrap();
    let capture = Capture::default();
    let store = tracing::subscriber::with_default(capture.clone(), || {
        LogStore::open(&path, LogOptions::default())
    })
    .unwrap();
    let events = capture.0.lock().unwrap().clone();
    let cut = ends[6] - 4 - ends[5];
    let warning = events
        .iter()
        .find(|e| e.starts_with("WARN"))
        .unwrap_or_else(|| panic!("no warning among {events:?}"));
    assert!(
        warning.contains(&format!("offset={}", ends[5]))
            && warning.contains(&format!("cut_bytes={cut}"))
            && warning.contains("vat.log"),
        "{warning}"
    );
    assert_eq!(store.stats().cut_bytes, cut);
}
