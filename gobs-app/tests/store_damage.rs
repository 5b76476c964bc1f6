//! Damage to the store is never a quiet rollback: a damaged frame is refused, naming the
//! salvage; a command that only reads never writes the store; what is cut is kept; a lost
//! `vats/` is refused. Black-box tests on the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{gobs, machine_names, ok, state, text};

fn log_of(state: &Path) -> PathBuf {
    state.join("vats/registry.log")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The quarantine files beside the log.
fn kept_files(state: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(state.join("vats"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("registry.log.cut-"))
        .collect();
    found.sort();
    found
}

#[test]
fn a_flipped_last_byte_is_refused_and_salvage_keeps_the_cut_bytes() {
    let dir = state();
    let state = dir.path();
    for m in ["m1", "m2", "m3", "m4"] {
        ok(state, &["create-machine", m]);
    }
    ok(state, &["destroy-machine", "m4"]);
    let commits = |state: &Path| -> Vec<serde_json::Value> {
        let listed = ok(state, &["state", "history", "--json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&listed).unwrap()
    };
    let before = commits(state);
    let last_commit = before.last().unwrap()["offset"].as_u64().unwrap() as usize;
    let log = log_of(state);
    let mut bytes = std::fs::read(&log).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();

    let out = gobs(state, &["list-machines"]);
    assert!(
        !out.status.success(),
        "a damaged commit must not be rolled back quietly"
    );
    let err = text(&out.stderr);
    assert!(err.contains("registry.log"), "{err}");
    assert!(err.contains("not a torn write"), "{err}");
    assert!(err.contains("state salvage"), "{err}");
    assert!(text(&out.stdout).is_empty());
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "the file was changed");
    assert!(kept_files(state).is_empty());

    let said = ok(state, &["state", "salvage", "--json"]);
    let done: serde_json::Value = serde_json::from_str(&said).unwrap();
    let offset = done["offset"].as_u64().unwrap() as usize;
    let kept = PathBuf::from(done["kept_in"].as_str().unwrap());
    assert_eq!(kept_files(state), vec![kept.clone()]);
    assert_eq!(std::fs::read(&kept).unwrap(), &bytes[offset..]);
    assert_eq!(std::fs::read(&log).unwrap(), &bytes[..offset]);
    assert_eq!(
        done["bytes_cut"].as_u64().unwrap() as usize,
        bytes.len() - offset
    );
    // Exactly the damaged commit, the last one, was cut; the state before it opens and works.
    assert_eq!(offset, last_commit);
    assert_eq!(commits(state).len(), before.len() - 1);
    let names = machine_names(state);
    for m in ["m1", "m2", "m3"] {
        assert!(names.contains(&m.to_string()), "{names:?}");
    }
    ok(state, &["create-machine", "m5"]);
    // A second salvage finds nothing to do.
    let said = ok(state, &["state", "salvage"]);
    assert!(said.contains("nothing to salvage"), "{said}");
}

#[test]
fn a_torn_tail_is_left_alone_by_reads_and_kept_when_a_write_cuts_it() {
    let dir = state();
    let state = dir.path();
    ok(state, &["create-machine", "web-1"]);
    ok(state, &["create-machine", "web-2"]);
    let log = log_of(state);
    let whole = std::fs::read(&log).unwrap();
    let torn = &whole[..whole.len() - 3];
    std::fs::write(&log, torn).unwrap();
    for _ in 0..2 {
        let out = gobs(state, &["list-machines"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains("torn") && err.contains("registry.log.cut-"),
            "{err}"
        );
        assert_eq!(std::fs::read(&log).unwrap(), torn, "a read wrote the store");
    }
    ok(state, &["create-machine", "web-3"]);
    let kept = kept_files(state);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let cut = std::fs::read(&kept[0]).unwrap();
    assert!(torn.ends_with(&cut) && !cut.is_empty());
    assert!(machine_names(state).contains(&"web-3".to_string()));
}

#[test]
fn a_deleted_vats_directory_is_refused_not_a_fresh_start() {
    let dir = state();
    let state = dir.path();
    ok(state, &["create-machine", "m1"]);
    std::fs::remove_dir_all(state.join("vats")).unwrap();
    let out = gobs(state, &["list-machines"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("vats") && err.contains("is gone"), "{err}");
    assert!(
        err.contains("vats.created") && err.contains("backup"),
        "{err}"
    );
    assert!(
        !state.join("vats").exists(),
        "nothing was made in its place"
    );
}

/// One damage to a log: what it is (for messages) and the bytes it leaves.
fn corruptions(good: &[u8]) -> Vec<(String, Vec<u8>)> {
    let len = good.len();
    let at = |i: usize, n: usize| 8 + (len - 9) * i / n;
    let mut cases = Vec::new();
    for i in 0..40 {
        let offset = if i == 0 { len - 1 } else { at(i, 40) };
        let mut b = good.to_vec();
        b[offset] ^= 1 << (i % 8);
        cases.push((format!("bit {} of byte {offset} flipped", i % 8), b));
    }
    for i in 0..30 {
        let keep = if i == 0 { 0 } else { at(i, 30) + i % 7 };
        cases.push((format!("cut to {keep} bytes"), good[..keep].to_vec()));
    }
    for i in 0..30 {
        let from = at(i, 30);
        let to = (from + 16 + 8 * (i % 5)).min(len);
        let mut b = good.to_vec();
        b[from..to].fill(0);
        cases.push((format!("bytes {from}..{to} zeroed"), b));
    }
    cases
}

#[test]
fn commands_that_only_read_never_write_a_damaged_store() {
    let base = state();
    let base_dir = base.path();
    for m in ["a1", "a2", "a3"] {
        ok(base_dir, &["create-machine", m]);
    }
    ok(base_dir, &["destroy-machine", "a2"]);
    let good = std::fs::read(log_of(base_dir)).unwrap();
    let cases = corruptions(&good);
    assert!(cases.len() >= 90);
    let (mut refused, mut opened) = (0, 0);
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let dir = state();
        copy_dir(base_dir, dir.path());
        let log = log_of(dir.path());
        std::fs::write(&log, bytes).unwrap();
        let args: &[&str] = match i % 3 {
            0 => &["list-machines"],
            1 => &["machine", "a1"],
            _ => &["providers"],
        };
        let out = gobs(dir.path(), args);
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_eq!(
            std::fs::read(&log).unwrap(),
            *bytes,
            "{what}: {args:?} wrote the store"
        );
        assert!(kept_files(dir.path()).is_empty(), "{what}");
        // A damaged store is refused; a torn one opens (and `machine a1` may then say
        // there is no such machine).
        if out.status.success() || !err.contains("cannot open the actors' state") {
            opened += 1;
        } else {
            refused += 1;
            assert!(
                err.contains("registry.log") && (err.contains("salvage") || err.contains("backup")),
                "{what}: the refusal says what to do: {err}"
            );
        }
    }
    eprintln!(
        "{} damaged stores: {opened} opened, {refused} refused, none written",
        cases.len()
    );
    assert!(opened > 0 && refused > 0);
}
