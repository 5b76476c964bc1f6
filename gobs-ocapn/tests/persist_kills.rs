//! The node state survives being killed at random instants while it saves: after every
//! kill it opens, keeps its identity, and holds every export it had reported saved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use gobs_ocapn::persist::NodeState;

const CHILD: &str = "GOBS_OCAPN_PERSIST_CHILD";

/// Not a test of its own: the child that saves exports until it is killed.
#[test]
fn saving_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let mut state = NodeState::open(std::path::Path::new(&path)).unwrap();
    let start = state.exports().count();
    for i in start.. {
        let name = format!("export-{i}");
        state.swiss_for(&name).unwrap();
        println!("SAVED {name}");
    }
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

#[test]
fn killed_at_random_instants_the_state_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.state");
    let designator = NodeState::open(&path).unwrap().tls.designator();
    let mut saved: Vec<String> = Vec::new();
    for round in 0..25 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "saving_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.split_once("SAVED ").map(|(_, n)| n.trim().to_owned()))
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(20 + random_below(80)));
        child.kill().unwrap();
        child.wait().unwrap();
        saved.extend(reader.join().unwrap());
        let state = NodeState::open(&path)
            .unwrap_or_else(|e| panic!("round {round}: the state does not open after a kill: {e}"));
        assert_eq!(
            state.tls.designator(),
            designator,
            "round {round}: identity changed"
        );
        for name in &saved {
            assert!(
                state.exports().any(|(n, _)| n == name),
                "round {round}: {name} was reported saved and is gone"
            );
        }
    }
    assert!(
        saved.len() > 25,
        "the children saved too little to test anything: {}",
        saved.len()
    );
}

#[test]
fn a_corrupt_state_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.state");
    std::fs::write(&path, b"<15'gobs-ocapn-node1+").unwrap();
    let err = NodeState::open(&path).unwrap_err().to_string();
    assert!(err.contains("is corrupt"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"<15'gobs-ocapn-node1+");
}
