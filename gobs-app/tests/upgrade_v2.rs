//! `tests/fixtures/state-v2` was written by the release before one machine actor served
//! container, qemu and host machines (commit 84198af): a daemon made machines web-1
//! (dummy), db-1 (local), h1 (host), c1 (container) and q1 (qemu) and was stopped with
//! SIGTERM. Kept from that state directory: the config, the registry, the hob gateway's
//! and the host machine's files, and each container's and VM's records; left out are the
//! large files a stopped machine cannot use again (the container's root filesystem, the
//! VM's initramfs) and the logs. Its machines' processes are gone, as after a reboot.
//!
//! Opened by this build, every actor restores; the dummy machine runs commands; the host
//! machine's own hob-client attaches again and runs commands and copies files; the local
//! machine says its directory is gone (the fixture cannot carry it to where it was made);
//! the container and the VM show unreachable; every machine is destroyed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use common::{Daemon, fails, gobs, machine_names, ok, state, text, wait_for};
use gobs_testkit::Need;
use host::Client;

/// The fixture's listener port (kept in its gateway table, named by its machines' attach
/// sturdyrefs): one daemon on the fixture at a time, or the second finds it taken.
static FIXTURE_PORT: Mutex<()> = Mutex::new(());

/// Holds the fixture's port for the test that takes it; the first thing a test takes, so
/// the last it lets go (after its daemon).
fn fixture_port() -> MutexGuard<'static, ()> {
    FIXTURE_PORT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fixture, copied into `to` (a fresh state directory), its container provider's
/// bridge and subnet made this test's own (the fixture's would be shared by concurrent
/// runs); the guard removes the bridge and its firewall table when the test ends, passed
/// or not (a daemon brings them up again for the container machine the fixture holds).
fn copy_fixture(to: &Path) -> Bridge {
    common::copy_fixture("state-v2", to);
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let bridge = format!("gv2{:x}x{n}", pid & 0xff_ffff);
    let subnet = format!("10.{}.{}.0/24", 160 + (pid >> 8) % 20 + n % 10, pid % 256);
    let config = to.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("bridge = \"gfixv2\"", &format!("bridge = \"{bridge}\""))
        .replace(
            "subnet = \"10.250.77.0/24\"",
            &format!("subnet = \"{subnet}\""),
        );
    std::fs::write(&config, text).unwrap();
    Bridge(bridge)
}

/// A bridge a test's container provider may make: removed, with its firewall table, on
/// drop.
struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        // The fixture's own bridge too: a restored provider brings the network of its
        // saved settings up before the config's replace them.
        for name in [self.0.as_str(), "gfixv2"] {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", name])
                .stderr(Stdio::null())
                .status();
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "inet", &format!("gobs-{name}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A machine's `machine NAME --json`.
fn shown(state: &Path, machine: &str) -> serde_json::Value {
    serde_json::from_str(&ok(state, &["machine", machine, "--json"])).unwrap()
}

#[test]
fn the_release_before_one_machine_actor_opens_and_its_machines_keep_working() {
    let _port = fixture_port();
    let dir = state();
    let s = dir.path();
    let _bridge = copy_fixture(s);
    let checked = ok(s, &["state", "check-upgrade"]);
    assert!(checked.contains("0 would not restore"), "{checked}");
    assert_eq!(machine_names(s), ["c1", "db-1", "h1", "q1", "web-1"]);
    assert_eq!(
        ok(s, &["run", "web-1", "--", "echo", "hi"]),
        "dummy machine web-1 ran: echo hi\n"
    );
    let err = fails(s, &["run", "db-1", "--", "true"]);
    assert!(err.contains("has no directory"), "{err}");

    let daemon = Daemon::start(s);
    // The host machine's hob-client, started again on the state it kept, attaches with the
    // boss's attach sturdyref: the machine is the same machine, upgraded. Its
    // `client.json` and `node` move into its registry, and are kept aside.
    let client_dir = s.join("hosts/h1/client");
    let identity = gobs_ocapn::persist::NodeState::open(&client_dir.join("node"))
        .unwrap()
        .tls
        .designator();
    let mut client = Client::start(&client_dir);
    wait_for("h1 to attach again", || {
        shown(s, "h1")["status"] == "running"
    });
    for kept in ["client.json.migrated", "node.migrated"] {
        assert!(client_dir.join(kept).is_file(), "{kept}");
    }
    assert!(!client_dir.join("client.json").exists() && !client_dir.join("node").exists());
    let (tls, record) = gobs_app::hob_net::client_state::inspect(&client_dir).unwrap();
    assert_eq!(tls.unwrap().designator(), identity, "the same identity");
    assert_eq!(record.unwrap().machine, "h1");
    assert_eq!(ok(s, &["run", "h1", "--", "echo", "hi"]), "hi\n");
    let local = s.join("copied");
    std::fs::write(&local, b"upgraded\n").unwrap();
    let target = s.join("hosts/h1/put");
    let target = target.to_str().unwrap();
    ok(s, &["put-file", "h1", local.to_str().unwrap(), target]);
    assert_eq!(ok(s, &["get-file", "h1", target]), "upgraded\n");
    for machine in ["c1", "q1"] {
        let machine = shown(s, machine);
        assert_eq!(machine["status"], "unreachable", "{machine}");
    }
    for machine in ["web-1", "db-1", "h1", "q1"] {
        ok(s, &["destroy-machine", machine]);
    }
    wait_for("h1's hob-client to end once h1 is destroyed", || {
        client.child.try_wait().unwrap().is_some()
    });
    assert_eq!(machine_names(s), ["c1"]);
    let (status, log) = daemon.stop("TERM");
    assert!(status.success(), "{log}");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root and iproute2 (a container's teardown): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_container_machine_of_the_release_before_one_machine_actor_is_destroyed() {
    let _port = fixture_port();
    gobs_testkit::need(&[Need::Root, Need::Command("ip", "iproute2")]);
    let dir = state();
    let s = dir.path();
    let _bridge = copy_fixture(s);
    // That release named the container's anchor in `anchor.pid` only (the provider's record
    // has no anchor): a live process stands in for it, and teardown kills it.
    let mut anchor = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", anchor.id())).unwrap();
    let start = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap();
    let record = format!("{} {start}", anchor.id());
    std::fs::write(s.join("containers/c1/anchor.pid"), record).unwrap();
    let out = gobs(s, &["destroy-machine", "c1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ended = anchor.try_wait().unwrap();
    if ended.is_none() {
        anchor.kill().unwrap();
    }
    assert!(ended.is_some(), "the anchor named in anchor.pid was killed");
    assert!(!s.join("containers/c1").exists());
    assert_eq!(machine_names(s), ["db-1", "h1", "q1", "web-1"]);
}
