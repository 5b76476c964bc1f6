//! Replays every fuzz target's committed corpus (`fuzz/corpus/TARGET/`) through the same
//! entry points the cargo-fuzz targets call (`gobs_*::fuzzing`), so an input that once
//! crashed, or a seed that once decoded, fails CI if it ever panics again — on stable,
//! without libFuzzer.
//!
//! The seed corpus is made from real files and messages by the ignored test
//! `write_seed_corpus` (see `fuzz/README.md`):
//!
//! ```text
//! cargo test -p gobs-robustness --test fuzz_corpus -- --ignored write_seed_corpus
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// A fuzz target's entry point.
type Entry = fn(&[u8]);

/// Every fuzz target with its entry point: the table `fuzz/fuzz_targets/` mirrors.
const TARGETS: &[(&str, Entry)] = &[
    ("log_store", gobs_runtime::fuzzing::log_store),
    ("file_store", gobs_runtime::fuzzing::file_store),
    ("sqlite_store", gobs_runtime::fuzzing::sqlite_store),
    ("portrait", gobs_runtime::fuzzing::portrait),
    ("by_name", gobs_runtime::fuzzing::by_name),
    ("daemon_frame", gobs_app::fuzzing::daemon_frame),
    ("config", gobs_app::fuzzing::config),
    ("syrup", gobs_ocapn::fuzzing::syrup),
    ("captp_message", gobs_ocapn::fuzzing::captp_message),
    ("captp_session", gobs_ocapn::fuzzing::captp_session),
    ("ocapn_uri", gobs_ocapn::fuzzing::ocapn_uri),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn replay(target: &str) {
    let (_, entry) = TARGETS.iter().find(|(t, _)| *t == target).unwrap();
    let files = corpus(target);
    assert!(
        files.len() >= 3,
        "fuzz/corpus/{target} has {} files; regenerate the seeds",
        files.len()
    );
    for (path, bytes) in files {
        // Named first: a stack overflow aborts the process before any assertion can.
        eprintln!("replaying {}", path.display());
        let outcome = std::panic::catch_unwind(|| entry(&bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn every_fuzz_target_has_a_corpus_and_a_target_file() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&targets)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.trim_end_matches(".rs").to_string()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "fuzz/fuzz_targets and TARGETS differ");
    for (t, _) in TARGETS {
        assert!(corpus_dir(t).is_dir(), "no corpus for {t}");
    }
}

#[test]
fn replay_log_store() {
    replay("log_store");
}

#[test]
fn replay_file_store() {
    replay("file_store");
}

#[test]
fn replay_sqlite_store() {
    replay("sqlite_store");
}

#[test]
fn replay_portrait() {
    replay("portrait");
}

#[test]
fn replay_by_name() {
    replay("by_name");
}

#[test]
fn replay_daemon_frame() {
    replay("daemon_frame");
}

#[test]
fn replay_config() {
    replay("config");
}

#[test]
fn replay_syrup() {
    replay("syrup");
}

#[test]
fn replay_captp_message() {
    replay("captp_message");
}

#[test]
fn replay_captp_session() {
    replay("captp_session");
}

#[test]
fn replay_ocapn_uri() {
    replay("ocapn_uri");
}

/// The seeds are what they claim: real stores load, real Syrup decodes, the session seeds
/// open a session with the fuzz target's keys. (A seed the code no longer accepts would
/// leave its target fuzzing only the first checks.)
#[test]
fn seeds_are_accepted_by_the_real_decoders() {
    use gobs_runtime::store::one_vat::read_lone_vat_file;
    use gobs_runtime::store::{LogOptions, LogStore};
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in corpus("log_store") {
        let stem = name.file_name().unwrap().to_string_lossy().into_owned();
        if !["seed-ghash-deltas", "seed-snapshot"].contains(&stem.as_str()) {
            continue;
        }
        let path = dir.path().join(&stem);
        std::fs::write(&path, &bytes).unwrap();
        let graph = LogStore::open(&path, LogOptions::default()).unwrap().load();
        assert!(graph.unwrap().is_some(), "{stem}");
    }
    for stem in ["seed-ghash", "seed-cell", "seed-account-v1"] {
        let path = dir.path().join(stem);
        std::fs::copy(corpus_dir("file_store").join(stem), &path).unwrap();
        let graph = read_lone_vat_file(&path);
        assert!(graph.unwrap().is_some(), "{stem}");
    }
    for (name, bytes) in corpus("syrup") {
        if name
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            gobs_ocapn::syrup::decode(&bytes).unwrap();
        }
    }
    let hello = std::fs::read(corpus_dir("captp_session").join("seed-hello")).unwrap();
    let mut session = gobs_ocapn::captp::Session::new(
        gobs_ocapn::captp::ConnId(1),
        Default::default(),
        gobs_ocapn::captp::KeyPair::from_seed(&gobs_ocapn::fuzzing::SESSION_SEED),
        &gobs_ocapn::fuzzing::session_locator(),
        gobs_ocapn::captp::LocalRef {
            id: gobs_ocapn::captp::ObjId(0),
            promise: false,
        },
    );
    session.receive(&hello[1..]);
    let event = session.poll_event();
    assert!(
        matches!(event, Some(gobs_ocapn::captp::Event::Opened { .. })),
        "{event:?}"
    );
}

/// Writes the seed corpus from the real code: stores written by the real stores, portraits
/// saved by real vats, real protocol frames, config files and CapTP sessions.
#[test]
#[ignore = "writes fuzz/corpus; run by hand when the formats change"]
fn write_seed_corpus() {
    seeds::write_all();
}

mod seeds;
