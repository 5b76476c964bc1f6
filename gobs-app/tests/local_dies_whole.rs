//! Black-box: a `local` machine dies whole. A background process a command left behind
//! (`nohup sleep 300 &`) is gone once `destroy-machine` returns, through the daemon and
//! embedded, and no process of the machine's uid is left; checked in `/proc`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use std::path::Path;

use gobs_testkit::Need;

/// The processes of `uid` that are alive (not zombies), from `/proc`.
fn live_of_uid(uid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                return false; // ended meanwhile
            };
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_default()
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            };
            field("Uid:") == uid.to_string() && field("State:") != "Z"
        })
        .collect()
}

/// Whether `pid` is alive (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

/// Creates machine `m`, leaves `nohup sleep 300 &` running on it, destroys it, and checks
/// that nothing of it is left.
fn a_background_process_ends_with_its_machine(s: &Path) {
    ok(s, &["create-machine", "m", "--provider", "local"]);
    let uid: u32 = ok(s, &["run", "m", "--", "id", "-u"])
        .trim()
        .parse()
        .unwrap();
    let pid: u32 = ok(
        s,
        &["run", "m", "--", "sh", "-c", "nohup sleep 300 & echo $!"],
    )
    .trim()
    .parse()
    .unwrap();
    assert!(
        alive(pid),
        "the background sleep runs after its command ended"
    );
    assert!(live_of_uid(uid).contains(&pid));
    ok(s, &["destroy-machine", "m"]);
    // destroy-machine returns only once the machine's processes are gone: no wait here.
    assert!(!alive(pid), "sleep {pid} outlived its machine");
    assert_eq!(
        live_of_uid(uid),
        Vec::<u32>::new(),
        "processes of uid {uid} are left"
    );
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root and mount namespaces: set GOBS_REQUIRE_PRIVILEGED=1 (CI sets CI) to run it"
)]
fn a_local_machine_leaves_no_process_after_destroy_embedded_and_through_the_daemon() {
    gobs_testkit::need(&[Need::Root, Need::MountTmpfs]);
    let dir = state();
    let s = dir.path();
    a_background_process_ends_with_its_machine(s);
    let daemon = Daemon::start(s);
    a_background_process_ends_with_its_machine(s);
    daemon.stop("TERM");
}
