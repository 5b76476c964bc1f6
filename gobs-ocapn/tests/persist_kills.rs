//! The node state survives being killed at random instants while it saves: after every
//! kill it opens, keeps its identity, and holds every export it had reported saved. The
//! same for a node's state in the persistence registry (`NodeStore`) while it saves and
//! revokes exports: every revocation reported done stays done, every export saved and
//! not revoked stays with its swiss number.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use gobs_ocapn::persist::NodeState;

const CHILD: &str = "GOBS_OCAPN_PERSIST_CHILD";
const REVOKING_CHILD: &str = "GOBS_OCAPN_REVOKING_CHILD";

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

fn store_env() -> gobs_runtime::Env {
    gobs_runtime::persistence_env!(
        "persist-kills",
        extends: [gobs_runtime::common_env(), gobs_ocapn::persist::env().unwrap()],
        actors: []
    )
    .unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Not a test of its own: the child that saves exports in a `NodeStore` and revokes every
/// other one, until it is killed. It prints `SAVED name swiss` once a save committed,
/// `REVOKING name` before a revocation and `REVOKED name` once it committed.
#[test]
fn revoking_child() {
    let Ok(spec) = std::env::var(REVOKING_CHILD) else {
        return;
    };
    let (dir, prefix) = spec.split_once('|').unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let registry = gobs_runtime::Registry::open(
            dir,
            store_env(),
            gobs_runtime::StoreKind::Log(Default::default()),
        )
        .unwrap();
        let store = gobs_ocapn::persist::NodeStore::open(&registry, None).unwrap();
        let n = gobs_ocapn::netlayer::TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let node = gobs_ocapn::node::Node::start(
            vec![std::sync::Arc::new(n) as std::sync::Arc<dyn gobs_ocapn::netlayer::Netlayer>],
            gobs_ocapn::captp::SessionConfig::default(),
        )
        .unwrap();
        store.attach(&node).await.unwrap();
        for i in 0u64.. {
            let name = format!("{prefix}-{i}");
            let (s, n) = (store.clone(), name.clone());
            let swiss = tokio::task::spawn_blocking(move || s.swiss_for(&n))
                .await
                .unwrap()
                .unwrap();
            println!("SAVED {name} {}", hex(&swiss));
            if i % 2 == 1 {
                println!("REVOKING {name}");
                let revoked = store.revoke(&node, &swiss).await.unwrap();
                assert!(revoked.is_some(), "{name} was not known when revoked");
                println!("REVOKED {name}");
            }
        }
    });
}

#[test]
fn a_node_store_killed_while_revoking_keeps_every_revocation_and_every_export() {
    use std::collections::{BTreeMap, BTreeSet};
    let dir = tempfile::tempdir().unwrap();
    let vats = dir.path().join("vats");
    let mut saved: BTreeMap<String, String> = BTreeMap::new();
    let (mut revoked, mut in_flight) = (BTreeSet::new(), BTreeSet::new());
    let mut designator = None;
    for round in 0..25 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "revoking_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(REVOKING_CHILD, format!("{}|r{round}", vats.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(50 + random_below(250)));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("SAVED"), Some(name), Some(swiss)) => {
                    saved.insert(name.to_owned(), swiss.to_owned());
                }
                (Some("REVOKING"), Some(name), None) => {
                    in_flight.insert(name.to_owned());
                }
                (Some("REVOKED"), Some(name), None) => {
                    in_flight.remove(name);
                    revoked.insert(name.to_owned());
                }
                _ => {}
            }
        }
        let registry = gobs_runtime::Registry::open(
            &vats,
            store_env(),
            gobs_runtime::StoreKind::Log(Default::default()),
        )
        .unwrap_or_else(|e| panic!("round {round}: the registry does not open after a kill: {e}"));
        let store = gobs_ocapn::persist::NodeStore::open(&registry, None)
            .unwrap_or_else(|e| panic!("round {round}: the node store does not open: {e}"));
        let now = store.tls().unwrap().designator();
        assert_eq!(
            *designator.get_or_insert(now.clone()),
            now,
            "round {round}: identity changed"
        );
        let names = store.names().unwrap();
        for (name, swiss) in &saved {
            let kept = names.get(name).map(|s| hex(s));
            if revoked.contains(name) {
                assert_ne!(
                    kept.as_ref(),
                    Some(swiss),
                    "round {round}: {name} was revoked and is back"
                );
            } else if !in_flight.contains(name) {
                assert_eq!(
                    kept.as_ref(),
                    Some(swiss),
                    "round {round}: {name} was saved and is gone"
                );
            }
        }
        registry.shutdown();
    }
    assert!(
        saved.len() > 25 && revoked.len() > 10,
        "the children did too little to test anything: {} saved, {} revoked",
        saved.len(),
        revoked.len()
    );
    println!(
        "{} exports saved, {} revoked, {} revocations cut by a kill, over 25 kills",
        saved.len(),
        revoked.len(),
        in_flight.len()
    );
}
