//! Peers that claim a machine's location cannot disturb it, black-box through the daemon:
//! while host machine `m1` (its real hob-client) runs commands without pause and
//! `list-machines --json` is polled, 40 fake peers open sessions with the boss claiming
//! m1's location, each signing with keys it chose (half present a certificate of their
//! own, half none). Every `run` succeeds and is served by m1's own client, m1 is never
//! shown other than `running`, and its session is intact after.
//!
//! The test learns everything as a peer on the host's loopback would: the boss's listener
//! from `/proc`, m1's location from the certificate its hob-client's listener presents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/peers.rs"]
mod peers;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use common::{gobs, ok, text, wait_for};
use host::served_by;
use peers::{claim_session, tcp_tls_locator, the_tcp_listener};

const IMPOSTORS: usize = 40;

/// Machine `name`'s status in `list-machines --json`.
fn listed_status(s: &Path, name: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&ok(s, &["list-machines", "--json"])).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .map(|m| m["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| format!("{name} not listed: {json}"))
}

/// Runs `body` on a thread until `stop` is set, counting its rounds in `rounds`; answers
/// what went wrong, round by round.
fn repeatedly(
    stop: &Arc<AtomicBool>,
    rounds: &Arc<AtomicUsize>,
    body: impl Fn(usize) -> Option<String> + Send + 'static,
) -> thread::JoinHandle<Vec<String>> {
    let (stop, rounds) = (stop.clone(), rounds.clone());
    thread::spawn(move || {
        let mut wrong = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let n = rounds.load(Ordering::Acquire);
            wrong.extend(body(n));
            rounds.fetch_add(1, Ordering::AcqRel);
        }
        wrong
    })
}

#[test]
fn forty_peers_claiming_a_machines_location_cannot_disturb_it() {
    // The boss's OCapN node logs, at info, each session it refuses and why.
    let (dir, daemon, real) = host::with_machine(
        host::CONFIG,
        "m1",
        &[("RUST_LOG", "warn,gobs_ocapn_proto=info")],
    );
    let s = dir.path().to_path_buf();
    let real_pid = real.pid().unwrap().as_raw_nonzero().get() as u32;
    assert_eq!(served_by(&s, "m1"), Some(real_pid));
    let rt = peers::runtime();
    let boss = rt.block_on(tcp_tls_locator(the_tcp_listener(daemon.pid())));
    // m1's location: what its hob-client's certificate proves.
    let m1 = rt.block_on(tcp_tls_locator(the_tcp_listener(real_pid)));

    let stop = Arc::new(AtomicBool::new(false));
    let (runs, polls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let runner = repeatedly(&stop, &runs, {
        let s = s.clone();
        move |n| {
            let out = gobs(
                &s,
                &["run", "m1", "--", "sh", "-c", &format!("echo {n} $PPID")],
            );
            let said = text(&out.stdout);
            (!out.status.success() || said.trim() != format!("{n} {real_pid}")).then(|| {
                format!(
                    "run {n}: {} stdout {said:?} stderr {:?}",
                    out.status,
                    text(&out.stderr)
                )
            })
        }
    });
    let watcher = repeatedly(&stop, &polls, {
        let s = s.clone();
        move |n| {
            let status = listed_status(&s, "m1");
            (status != "running").then(|| format!("poll {n}: m1 {status}"))
        }
    });

    // Each impostor comes once the machine has answered another command since the last,
    // so the storm and the commands interleave.
    let mut outcomes = Vec::new();
    for i in 0..IMPOSTORS {
        let after = runs.load(Ordering::Acquire);
        wait_for("another run of m1", || runs.load(Ordering::Acquire) > after);
        outcomes.push(rt.block_on(claim_session(&boss, &m1, i % 2 == 0)));
    }
    let (runs_in_storm, polls_in_storm) =
        (runs.load(Ordering::Acquire), polls.load(Ordering::Acquire));
    // A few more of each after the last impostor, then the tally.
    wait_for("runs and polls after the storm", || {
        runs.load(Ordering::Acquire) >= runs_in_storm + 3
            && polls.load(Ordering::Acquire) >= polls_in_storm + 3
    });
    stop.store(true, Ordering::Release);
    let failed_runs = runner.join().unwrap();
    let not_running = watcher.join().unwrap();
    eprintln!(
        "{IMPOSTORS} impostors; {} runs and {} polls of list-machines meanwhile; the impostors \
         got: {:?}",
        runs.load(Ordering::Acquire),
        polls.load(Ordering::Acquire),
        outcomes.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert!(
        failed_runs.is_empty(),
        "{} of {} runs failed: {failed_runs:#?}",
        failed_runs.len(),
        runs.load(Ordering::Acquire)
    );
    assert!(not_running.is_empty(), "{not_running:#?}");
    // No impostor got an answer from the boss; they reached it, claiming m1's location,
    // and were refused for that.
    let answered: Vec<_> = outcomes
        .iter()
        .filter(|o| o.starts_with("answered"))
        .collect();
    assert!(answered.is_empty(), "{answered:?}");
    let log = daemon.stderr();
    let refused = log
        .lines()
        .filter(|l| {
            l.contains("refusing a session that claims the location of a proved one")
                && l.contains(&m1.designator)
        })
        .count();
    // An impostor's node dials again a few times when its session is refused before its
    // question was read: each is refused at least once, usually several times.
    eprintln!("the boss refused {refused} sessions claiming m1's location");
    assert!(refused >= IMPOSTORS, "{refused} refusals:\n{log}");

    // m1's own session, intact: the same client serves, and the boss shows no trouble.
    assert_eq!(served_by(&s, "m1"), Some(real_pid));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&s, &["machine", "m1", "--json"])).unwrap();
    assert_eq!(shown["status"], "running", "{shown}");
}
