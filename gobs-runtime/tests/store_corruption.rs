//! Damaged store files: the file store refuses them untouched; the log store cuts a torn
//! tail and refuses other damage untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{delta, model};
use gobs_runtime::store::{Durability, FileStore, LogOptions, LogStore, Store, StoreError};

fn file_store_with(dir: &Path, commits: u64) -> PathBuf {
    let path = dir.join("vat.gobs");
    let mut store = FileStore::open(&path, Durability::EveryCommit).unwrap();
    for i in 1..=commits {
        store.commit(&delta(i)).unwrap();
    }
    path
}

/// Opens a file store on `bytes`; expects `Corrupt` and the bytes left as they were.
fn assert_file_corrupt(path: &Path, bytes: &[u8], what: &str) -> (u64, String) {
    std::fs::write(path, bytes).unwrap();
    let err = FileStore::open(path, Durability::EveryCommit).unwrap_err();
    let after = std::fs::read(path).unwrap();
    assert!(after == bytes, "{what}: the file was changed");
    match err {
        StoreError::Corrupt {
            path: p,
            offset,
            detail,
        } => {
            assert_eq!(p, path, "{what}");
            (offset, detail)
        }
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

#[test]
fn file_store_rejects_damage_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_store_with(dir.path(), 30);
    let good = std::fs::read(&path).unwrap();

    // A flipped byte anywhere in the body.
    for at in [24, 25, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        let (offset, detail) = assert_file_corrupt(&path, &bad, "flipped body byte");
        assert_eq!(offset, 24);
        assert!(detail.contains("checksum"), "{detail}");
    }
    // A flipped byte in the stored checksum.
    let mut bad = good.clone();
    bad[21] ^= 1;
    assert_file_corrupt(&path, &bad, "flipped checksum");
    // Wrong magic.
    let mut bad = good.clone();
    bad[..8].copy_from_slice(b"NOTGOBS!");
    let (offset, detail) = assert_file_corrupt(&path, &bad, "wrong magic");
    assert_eq!(offset, 0);
    assert!(detail.contains("GOBSFILE"), "{detail}");
    // Another format version.
    let mut bad = good.clone();
    bad[8] = 9;
    let (offset, detail) = assert_file_corrupt(&path, &bad, "version");
    assert_eq!(offset, 8);
    assert!(detail.contains("version 9"), "{detail}");
    // Truncated anywhere: inside the magic, the header, the body.
    for len in [0, 3, 8, 12, 23, 24, 25, good.len() / 2, good.len() - 1] {
        let (_, detail) = assert_file_corrupt(&path, &good[..len], "truncated");
        assert!(
            detail.contains("truncated") || len < 8,
            "len {len}: {detail}"
        );
    }
    // Bytes appended.
    let mut bad = good.clone();
    bad.extend_from_slice(b"garbage");
    let (offset, _) = assert_file_corrupt(&path, &bad, "appended");
    assert_eq!(offset, good.len() as u64);
    // A body with a valid checksum that is not a graph.
    let mut bad = good[..24].to_vec();
    let body = b"\xc1\xc1\xc1";
    bad[12..20].copy_from_slice(&(body.len() as u64).to_le_bytes());
    bad[20..24].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    bad.extend_from_slice(body);
    let (_, detail) = assert_file_corrupt(&path, &bad, "undecodable body");
    assert!(detail.contains("decode"), "{detail}");

    // The error says what to do.
    std::fs::write(&path, &good[..30]).unwrap();
    let msg = FileStore::open(&path, Durability::EveryCommit)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("vat.gobs") && msg.contains("backup"), "{msg}");

    // The good bytes still load.
    std::fs::write(&path, &good).unwrap();
    let mut store = FileStore::open(&path, Durability::EveryCommit).unwrap();
    assert_eq!(store.load().unwrap(), model(30));
}

#[test]
fn file_store_ignores_a_stale_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_store_with(dir.path(), 5);
    std::fs::write(dir.path().join("vat.gobs.tmp"), b"half a write").unwrap();
    let mut store = FileStore::open(&path, Durability::EveryCommit).unwrap();
    assert_eq!(store.load().unwrap(), model(5));
    assert!(!dir.path().join("vat.gobs.tmp").exists());
}

/// A log of `commits` commits (never compacted); returns its path and the end offset of
/// the file after each commit (`ends[k]` = length holding commits 1..=k, `ends[0]` = 0).
fn log_with(dir: &Path, commits: u64) -> (PathBuf, Vec<u64>) {
    let path = dir.join("vat.log");
    let mut store = LogStore::open(&path, LogOptions::default()).unwrap();
    let mut ends = vec![0];
    for i in 1..=commits {
        store.commit(&delta(i)).unwrap();
        ends.push(store.stats().file_bytes);
        assert_eq!(ends[i as usize], std::fs::metadata(&path).unwrap().len());
    }
    assert_eq!(store.stats().compactions, 0);
    (path, ends)
}

fn open_log(path: &Path) -> Result<LogStore, StoreError> {
    LogStore::open(path, LogOptions::default())
}

#[test]
fn log_store_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = log_with(dir.path(), 20);
    let good = std::fs::read(&path).unwrap();
    // Cut inside the last frame at every offset (header and payload), and inside an
    // earlier frame (all later frames gone).
    let last_start = ends[19] as usize;
    let mut cuts: Vec<(usize, u64)> = (last_start + 1..good.len()).map(|c| (c, 19)).collect();
    cuts.push((ends[10] as usize + 5, 10));
    for (cut, kept) in cuts {
        std::fs::write(&path, &good[..cut]).unwrap();
        let mut store = open_log(&path).unwrap();
        assert_eq!(store.load().unwrap(), model(kept), "cut at {cut}");
        assert_eq!(store.stats().cut_bytes, cut as u64 - ends[kept as usize]);
        drop(store);
        // The file was cut back to the last whole frame.
        assert_eq!(
            std::fs::read(&path).unwrap(),
            &good[..ends[kept as usize] as usize]
        );
    }
    // Commits go on after a cut, and reopen.
    let mut store = open_log(&path).unwrap();
    for i in 11..=25 {
        store.commit(&delta(i)).unwrap();
    }
    drop(store);
    assert_eq!(open_log(&path).unwrap().load().unwrap(), model(25));
}

#[test]
fn log_store_cuts_garbage_and_damaged_last_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = log_with(dir.path(), 12);
    let good = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("zeros appended", [good.clone(), vec![0; 4096]].concat(), 12),
        (
            "text appended",
            [good.clone(), b"some garbage".to_vec()].concat(),
            12,
        ),
        (
            "pseudo-random appended",
            [
                good.clone(),
                (0..10_000u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect(),
            ]
            .concat(),
            12,
        ),
        (
            "last frame's payload flipped",
            {
                let mut b = good.clone();
                let at = good.len() - 3;
                b[at] ^= 0xff;
                b
            },
            11,
        ),
        (
            "last frame's length flipped",
            {
                let mut b = good.clone();
                b[ends[11] as usize] ^= 0x01;
                b
            },
            11,
        ),
    ];
    for (what, bytes, kept) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let mut store = open_log(&path).unwrap();
        assert_eq!(store.load().unwrap(), model(kept), "{what}");
        drop(store);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            &good[..ends[kept as usize] as usize],
            "{what}"
        );
    }
}

fn assert_log_corrupt(path: &Path, bytes: &[u8], what: &str) -> (u64, String) {
    std::fs::write(path, bytes).unwrap();
    let err = open_log(path).unwrap_err();
    assert!(
        std::fs::read(path).unwrap() == bytes,
        "{what}: the file was changed"
    );
    match err {
        StoreError::Corrupt { offset, detail, .. } => (offset, detail),
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

#[test]
fn log_store_rejects_bad_headers_and_mid_log_damage_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = log_with(dir.path(), 12);
    let good = std::fs::read(&path).unwrap();

    let mut bad = good.clone();
    bad[..8].copy_from_slice(b"GOBSFILE");
    let (offset, detail) = assert_log_corrupt(&path, &bad, "wrong magic");
    assert_eq!(offset, 0);
    assert!(detail.contains("GOBSLOG1"), "{detail}");
    for len in [0, 5, 8, 12, ends[1] as usize - 1] {
        assert_log_corrupt(&path, &good[..len], "truncated header or snapshot");
    }
    // The first frame (the snapshot) damaged: nothing to keep.
    let mut bad = good.clone();
    bad[20] ^= 0x10;
    let (offset, detail) = assert_log_corrupt(&path, &bad, "damaged snapshot");
    assert_eq!(offset, 8);
    assert!(detail.contains("first frame"), "{detail}");

    // A flipped byte in the middle, with valid frames after it: not a torn write.
    let mut bad = good.clone();
    let at = ends[5] as usize + 12;
    bad[at] ^= 0x08;
    let (offset, detail) = assert_log_corrupt(&path, &bad, "mid-log damage");
    assert_eq!(offset, ends[5]);
    assert!(
        detail.contains("salvage") && detail.contains("5 frames"),
        "{detail}"
    );

    // Salvage keeps the commits before the damage.
    let mut store = LogStore::open(
        &path,
        LogOptions {
            salvage: true,
            ..LogOptions::default()
        },
    )
    .unwrap();
    assert_eq!(store.load().unwrap(), model(5));
    drop(store);
    assert_eq!(std::fs::read(&path).unwrap(), &good[..ends[5] as usize]);
}

#[test]
fn log_store_ignores_a_stale_tmp_and_locks() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_with(dir.path(), 3);
    std::fs::write(dir.path().join("vat.log.tmp"), b"half a compaction").unwrap();
    let mut store = open_log(&path).unwrap();
    assert_eq!(store.load().unwrap(), model(3));
    assert!(!dir.path().join("vat.log.tmp").exists());
    assert!(matches!(open_log(&path), Err(StoreError::Locked { .. })));
}
