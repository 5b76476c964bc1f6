//! Damaged store files: the file store refuses them untouched; the log store cuts a torn
//! tail and refuses other damage untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{delta, model, whole_graph_file};
use gobs_runtime::store::one_vat::{ONE_VAT, kept_path};
use gobs_runtime::store::{LogOptions, LogStore, RegistryLogStore, Store, StoreError, VatRecord};

/// A one-vat whole-graph file (`GOBSFILE`, as the former file store wrote it) holding
/// the graph after `commits` commits.
fn file_store_with(dir: &Path, commits: u64) -> PathBuf {
    let path = dir.join("vat.gobs");
    let body = rmp_serde::to_vec(&model(commits).unwrap()).unwrap();
    std::fs::write(&path, whole_graph_file(&body)).unwrap();
    path
}

/// Opens a log store on a whole-graph file of `bytes` (which converts a good one);
/// expects `Corrupt` and the bytes left as they were.
fn assert_file_corrupt(path: &Path, bytes: &[u8], what: &str) -> (u64, String) {
    std::fs::write(path, bytes).unwrap();
    let err = RegistryLogStore::open(path, LogOptions::default()).unwrap_err();
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
    // Wrong magic: neither a whole-graph file nor a log.
    let mut bad = good.clone();
    bad[..8].copy_from_slice(b"NOTGOBS!");
    let (offset, _) = assert_file_corrupt(&path, &bad, "wrong magic");
    assert_eq!(offset, 0);
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
    let msg = RegistryLogStore::open(&path, LogOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("vat.gobs") && msg.contains("backup"), "{msg}");

    // The good bytes still load: converted, the old file kept beside the store.
    std::fs::write(&path, &good).unwrap();
    let mut store = RegistryLogStore::open(&path, LogOptions::default()).unwrap();
    let vats = store.load().unwrap();
    assert_eq!(vats.get(ONE_VAT), model(30).map(VatRecord::Saved).as_ref());
    assert_eq!(std::fs::read(kept_path(&path)).unwrap(), good);
}

#[test]
fn file_store_ignores_a_stale_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_store_with(dir.path(), 5);
    std::fs::write(dir.path().join("vat.gobs.tmp"), b"half a write").unwrap();
    let mut store = RegistryLogStore::open(&path, LogOptions::default()).unwrap();
    let vats = store.load().unwrap();
    assert_eq!(vats.get(ONE_VAT), model(5).map(VatRecord::Saved).as_ref());
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

/// The quarantine files beside `path` (`<name>.cut-*`), sorted.
fn quarantine_files(path: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.cut-", path.file_name().unwrap().to_str().unwrap());
    let mut found: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&prefix)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn log_store_leaves_a_torn_tail_out_and_cuts_it_at_the_first_write_keeping_it() {
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
        let torn = cut as u64 - ends[kept as usize];
        assert_eq!(store.stats().cut_bytes, torn);
        assert_eq!(store.torn_tail(), Some((ends[kept as usize], torn)));
        drop(store);
        // Opening (and closing) wrote nothing: the torn bytes are still there.
        assert_eq!(std::fs::read(&path).unwrap(), &good[..cut], "cut at {cut}");
    }
    assert!(quarantine_files(&path).is_empty());
    // The first write cuts the torn tail, keeping it beside the log; commits go on.
    let mut store = open_log(&path).unwrap();
    let kept_in = store.cut_kept_in().expect("a torn tail is pending");
    for i in 11..=25 {
        store.commit(&delta(i)).unwrap();
    }
    assert_eq!(store.quarantined(), Some(kept_in.as_path()));
    drop(store);
    assert_eq!(quarantine_files(&path), vec![kept_in.clone()]);
    assert_eq!(
        std::fs::read(&kept_in).unwrap(),
        &good[ends[10] as usize..ends[10] as usize + 5]
    );
    assert_eq!(open_log(&path).unwrap().load().unwrap(), model(25));
}

#[test]
fn log_store_tells_a_torn_tail_from_a_damaged_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (path, ends) = log_with(dir.path(), 12);
    let good = std::fs::read(&path).unwrap();
    // What a crash mid-append (or a file system extending a file) leaves: torn.
    let torn: Vec<(&str, Vec<u8>)> = vec![
        ("zeros appended", [good.clone(), vec![0; 4096]].concat()),
        (
            "text appended",
            [good.clone(), b"some garbage".to_vec()].concat(),
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
        ),
        ("last frame zeroed, header and all", {
            let mut b = good.clone();
            b[ends[11] as usize..].fill(0);
            b
        }),
    ];
    for (what, bytes) in torn {
        std::fs::write(&path, &bytes).unwrap();
        let mut store = open_log(&path).unwrap();
        let expect = if what.starts_with("last frame") {
            11
        } else {
            12
        };
        assert_eq!(store.load().unwrap(), model(expect), "{what}");
        assert!(store.torn_tail().is_some(), "{what}");
        drop(store);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{what}: the file was changed"
        );
    }
    // A whole last frame with a bad checksum is not a torn write: refused, untouched.
    for at in [ends[11] as usize + 4, ends[11] as usize + 9, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let (offset, detail) = assert_log_corrupt(&path, &bad, "flipped last frame");
        assert_eq!(offset, ends[11]);
        assert!(
            detail.contains("not a torn write") && detail.contains("salvage"),
            "{detail}"
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
    let kept_in = store
        .quarantined()
        .expect("salvage keeps the cut bytes")
        .to_path_buf();
    drop(store);
    assert_eq!(std::fs::read(&path).unwrap(), &good[..ends[5] as usize]);
    assert_eq!(std::fs::read(&kept_in).unwrap(), &bad[ends[5] as usize..]);
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
