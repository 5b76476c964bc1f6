//! The node state survives being killed at random instants while it saves: after every
//! kill it opens, keeps its identity, and holds every export it had reported saved. The
//! same for a node's state in the persistence registry (`NodeStore`) while it saves and
//! revokes exports: every revocation reported done stays done, every export saved and
//! not revoked stays with its swiss number.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gobs_ocapn::persist::NodeState;

const CHILD: &str = "GOBS_OCAPN_PERSIST_CHILD";
const REVOKING_CHILD: &str = "GOBS_OCAPN_REVOKING_CHILD";
/// Kills per test.
const ROUNDS: usize = 25;
/// How long a child may go without printing before the test calls it hung. Only a hang
/// reaches it: a child prints a line every few milliseconds while it works.
const HANG: Duration = Duration::from_secs(120);

/// A child test process that reports each step on a line of its stdout; the parent reads
/// them as they come, so it can kill the child at a chosen step.
struct Child {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Child {
    fn spawn(test: &str, var: &str, value: &str) -> Child {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(var, value)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one starts with `prefix` (the child's next report of that step).
    fn wait_for(&mut self, prefix: &str) {
        loop {
            let line = match self.lines.recv_timeout(HANG) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the child printed nothing for {HANG:?} while we waited for {prefix}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the child ended while we waited for {prefix}; see its stderr")
                }
            };
            let found = line.starts_with(prefix);
            self.seen.push(line);
            if found {
                return;
            }
        }
    }

    /// SIGKILLs the child after a random spin of up to 2 ms (so the kill lands anywhere in
    /// the step under way; nothing waits on the spin), then reads every line it printed.
    fn kill(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_micros(random_below(2000)));
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        self.seen
    }
}

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
        println!("SAVING {name}");
        state.swiss_for(&name).unwrap();
        println!("SAVED {name}");
    }
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n
}

/// The step the child's last line says it was in when it died: the line's first word and
/// the name it was about.
fn dying_step(lines: &[String]) -> Option<(&str, &str)> {
    lines.iter().rev().find_map(|l| l.split_once(' '))
}

#[test]
fn killed_at_random_instants_the_state_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.state");
    let designator = NodeState::open(&path).unwrap().tls.designator();
    let mut saved: Vec<String> = Vec::new();
    let mut mid_save = 0;
    for round in 0..ROUNDS {
        let mut child = Child::spawn("saving_child", CHILD, &path.display().to_string());
        // A random number of saves first, so kills land at different sizes of the state.
        for _ in 0..=random_below(8) {
            child.wait_for("SAVED ");
        }
        let lines = child.kill();
        if let Some(("SAVING", _)) = dying_step(&lines) {
            mid_save += 1;
        }
        saved.extend(
            lines
                .iter()
                .filter_map(|l| l.strip_prefix("SAVED ").map(str::to_owned)),
        );
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
    // The loop tests saving only if kills cut saves.
    assert!(
        mid_save >= ROUNDS / 3,
        "only {mid_save} of {ROUNDS} kills landed while a save was under way"
    );
    println!(
        "{} exports saved; {mid_save} of {ROUNDS} kills cut a save",
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
/// other one, until it is killed. It prints `SAVING name` before a save and `SAVED name
/// swiss` once it committed, `REVOKING name` before a revocation and `REVOKED name` once it
/// committed.
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
            println!("SAVING {name}");
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
    let (mut mid_save, mut mid_revoke) = (0, 0);
    for round in 0..ROUNDS {
        let spec = format!("{}|r{round}", vats.display());
        let mut child = Child::spawn("revoking_child", REVOKING_CHILD, &spec);
        // Odd rounds aim at a revocation, even rounds at a save, after a random number of
        // saves so the store grows between kills.
        for _ in 0..=random_below(6) {
            child.wait_for("SAVED ");
        }
        child.wait_for(if round % 2 == 1 {
            "REVOKING "
        } else {
            "SAVING "
        });
        let lines = child.kill();
        match dying_step(&lines) {
            Some(("SAVING", _)) => mid_save += 1,
            Some(("REVOKING", _)) => mid_revoke += 1,
            _ => {}
        }
        for line in lines {
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
    // The loop tests what it claims only if kills cut revocations and saves.
    assert!(
        mid_revoke >= ROUNDS / 6 && mid_save >= ROUNDS / 6,
        "of {ROUNDS} kills only {mid_revoke} landed during a revocation and {mid_save} during a save"
    );
    println!(
        "{} exports saved, {} revoked; of {ROUNDS} kills {mid_revoke} cut a revocation, {mid_save} a save",
        saved.len(),
        revoked.len(),
    );
}
