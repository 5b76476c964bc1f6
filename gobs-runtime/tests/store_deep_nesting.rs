//! A store file nested thousands of levels deep (a damaged or hostile file) is refused as
//! corrupt, on a thread with a small stack: the decoder bounds its nesting instead of
//! recursing until the stack overflows (found by fuzzing the file store: rmp-serde's own
//! bound of 1024 levels overflowed a 2 MiB test thread in a debug build).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use gobs_runtime::store::{LogOptions, LogStore, RegistryLogStore, StoreError};

/// A graph `[roots, next_id, {0: {"x": [[[[…]]]]}}]` whose portrait has an unknown field
/// holding `depth` nested arrays.
fn deep_body(depth: usize) -> Vec<u8> {
    let mut body = vec![0x93, 0x91, 0x00, 0x02, 0x81, 0x00, 0x81, 0xa1, b'x'];
    body.extend(std::iter::repeat_n(0x91, depth));
    body.push(0xc0);
    body
}

fn on_a_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_deeply_nested_file_store_is_corrupt_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.gobs");
    let body = deep_body(5000);
    std::fs::write(&path, common::whole_graph_file(&body)).unwrap();
    let err = on_a_small_stack(move || RegistryLogStore::open(&path, LogOptions::default()).err());
    let err = err.expect("a deeply nested file opened");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("does not decode"), "{err}");
}

#[test]
fn a_deeply_nested_log_frame_is_corrupt_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.log");
    let mut payload = vec![0x92, 0x00];
    payload.extend(deep_body(5000));
    let mut file = b"GOBSLOG1".to_vec();
    file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    file.extend_from_slice(&payload);
    std::fs::write(&path, file).unwrap();
    let err = on_a_small_stack(move || LogStore::open(&path, LogOptions::default()).err());
    let err = err.expect("a deeply nested log opened");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}
