//! A daemon killed with `kill -9` while it holds 50 container machines: its machines live
//! on, and once a new daemon starts, every one of them is `running` again by itself (their
//! hob-clients attach again). The test prints how long that took after the new daemon
//! served, for the record (issue 21 asks for 2 s); it asserts that all of them come back
//! and answer, not how fast.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/setup.rs"]
mod setup;

use std::time::Instant;

use common::needs::CONTAINER as NEEDS;
use common::{listed, ok, wait_for};
use setup::Setup;

const MACHINES: usize = 50;

/// How many machines `list-machines` shows `running`.
fn running(s: &std::path::Path) -> usize {
    listed(s)
        .iter()
        .filter(|m| m["status"] == "running")
        .count()
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn fifty_containers_are_running_again_after_a_daemon_kill() {
    gobs_testkit::need(NEEDS);
    // The guard: destroys the machines and removes the bridge even when the test fails.
    let mut setup = Setup::containers("");
    let s = setup.s().to_path_buf();
    setup.start_daemon();
    let made = Instant::now();
    for i in 0..MACHINES {
        ok(&s, &["create-machine", &format!("c{i}")]);
    }
    eprintln!("{MACHINES} containers made in {:.1?}", made.elapsed());
    assert_eq!(running(&s), MACHINES);

    setup.kill_daemon();
    let restarted = Instant::now();
    setup.start_daemon();
    let serving = restarted.elapsed();
    wait_for("every container to be running again", || {
        running(&s) == MACHINES
    });
    let back = restarted.elapsed();
    eprintln!(
        "after kill -9: the new daemon served in {serving:.2?}, all {MACHINES} machines were \
         running again {:.2?} later ({back:.2?} in all)",
        back - serving
    );
    // They are really back: each of a few answers a command through its new session.
    for i in [0, MACHINES / 2, MACHINES - 1] {
        let name = format!("c{i}");
        let out = ok(&s, &["run", &name, "--", "hostname"]);
        assert_eq!(out.trim(), name);
    }
}
