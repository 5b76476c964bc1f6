//! Black-box tests of the `container` provider on the built binary, as root: a machine is
//! its own host (hostname, namespaces, root filesystem), survives a killed daemon and a
//! killed hob-client, refuses a replayed registration and a copy of its attach credential
//! in another container (a conflict, shown on it), fails with the reason when it cannot
//! register, and leaves nothing behind when destroyed; its cgroup is checked on the
//! hierarchy the provider uses here (v2, or v1's memory and pids). Each test needs root,
//! namespaces, a cgroup, busybox, iproute2 and nftables ([`NEEDS`]): reported as ignored without
//! `GOBS_REQUIRE_PRIVILEGED` (or `CI`), failing by name with it when the machine lacks one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/setup.rs"]
mod setup;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::needs::CONTAINER as NEEDS;
use common::{
    bare, fails, gobs, machine_names, ok, on_a_terminal, shows_in_order, step_lines, text, wait_for,
};
use gobs_app::hob_net::client_state;
use gobs_app::providers::container::cgroup::Cgroup;
use setup::Setup;

mod kill_loop;
mod operator;
/// The cgroup of the container tagged `tag`, on the hierarchy the provider uses on this
/// host (the provider's own plan: v2 where it has the controllers, else v1).
fn cgroup_of(tag: &str) -> Cgroup {
    Cgroup::plan(tag, 0, 0).expect("the provider finds a cgroup hierarchy on this host")
}

/// The pid of the hob-client among the processes of the container's cgroup.
fn hob_client_of(tag: &str) -> i32 {
    cgroup_of(tag)
        .processes()
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .contains("hob-client")
        })
        .expect("the hob-client runs in the container's cgroup")
}

impl Setup {
    fn container_dir(&self, machine: &str) -> PathBuf {
        self.s().join("containers").join(machine)
    }

    /// Machine `machine`'s slot in the container provider's record (read from the store,
    /// beside the daemon): `[tag, octet, anchor]`, or null.
    fn slot(&self, machine: &str) -> serde_json::Value {
        setup::recorded_slots(self.s())
            .get(machine)
            .cloned()
            .unwrap_or_default()
    }

    /// The pid of machine `machine`'s anchor, as the provider recorded it.
    fn anchor(&self, machine: &str) -> i32 {
        let slot = self.slot(machine);
        let record = slot[2].as_str().expect("the provider recorded the anchor");
        record.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Machine `machine`'s tag (names its veth and cgroup), as the provider recorded it.
    fn tag(&self, machine: &str) -> String {
        self.slot(machine)[0].as_str().unwrap().to_string()
    }
}

fn status_of(s: &Path, machine: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&ok(s, &["machine", machine, "--json"])).unwrap();
    json["status"].as_str().unwrap().to_string()
}

/// Waits until `machine` is `want`; answers how long that took. The bound only catches a
/// hang: these are not timing claims.
fn wait_status(s: &Path, machine: &str, want: &str) -> Duration {
    let limit = Duration::from_secs(120);
    let start = Instant::now();
    loop {
        let now = status_of(s, machine);
        if now == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "machine {machine} is {now}, not {want}, after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ns_of(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Every process whose `kind` namespace is `ns`.
fn processes_in(kind: &str, ns: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .filter(|p| ns_of(p, kind) == ns)
        .collect()
}

/// The container's cgroup is gone from the hierarchy in use.
fn assert_no_cgroup(tag: &str) {
    let group = cgroup_of(tag);
    let dirs: Vec<&Path> = group.dirs().collect();
    assert!(!dirs.is_empty(), "the plan names the cgroup's directories");
    for dir in dirs {
        assert!(!dir.exists(), "cgroup {} is left", dir.display());
    }
}

fn assert_nothing_left(setup: &Setup, machine: &str, anchor: i32, tag: &str, net_ns: &str) {
    assert!(
        !Path::new(&format!("/proc/{anchor}")).exists()
            || std::fs::read_to_string(format!("/proc/{anchor}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "the container's init {anchor} still runs"
    );
    assert_eq!(
        processes_in("net", net_ns),
        Vec::<String>::new(),
        "processes in its net namespace"
    );
    assert!(
        !Path::new(&format!("/sys/class/net/gh{tag}")).exists(),
        "its veth is left"
    );
    assert!(
        !Path::new(&format!("/sys/class/net/{}", setup.bridge_name())).exists(),
        "the bridge is left"
    );
    assert_no_cgroup(tag);
    assert!(
        !setup.container_dir(machine).exists(),
        "its directory is left"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let here = setup.s().display().to_string();
    assert!(
        !mounts.contains(&here),
        "mounts under {here} are left:\n{mounts}"
    );
}

/// What the hob-client state in directory `dir` on machine `machine` holds (its registry
/// copied out): its identity and its record, as far as it stored them.
fn client_state_on(
    s: &Path,
    machine: &str,
    dir: &str,
) -> (
    Option<gobs_ocapn::netlayer::TlsIdentity>,
    Option<client_state::ClientState>,
) {
    let log = format!("{dir}/{}/registry.log", client_state::VATS_DIR);
    let out = gobs(s, &["get-file", machine, &log]);
    if !out.status.success() {
        return (None, None);
    }
    let copy = tempfile::tempdir().unwrap();
    let vats = copy.path().join(client_state::VATS_DIR);
    std::fs::create_dir_all(&vats).unwrap();
    std::fs::write(vats.join("registry.log"), out.stdout).unwrap();
    client_state::inspect(copy.path()).unwrap()
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_container_is_a_machine_of_its_own_and_leaves_nothing_behind() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::containers("");
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    let created = ok(&s, &["create-machine", "box-1"]);
    assert!(created.contains("running"), "{created}");
    assert_eq!(ok(&s, &["run", "box-1", "--", "hostname"]), "box-1\n");
    for kind in ["net", "pid"] {
        let inside = ok(
            &s,
            &[
                "run",
                "box-1",
                "--",
                "readlink",
                &format!("/proc/self/ns/{kind}"),
            ],
        );
        let host = ns_of("self", kind);
        assert!(inside.starts_with(&format!("{kind}:[")), "{inside}");
        assert_ne!(inside.trim(), host, "the {kind} namespace is the host's");
    }
    // Root inside, an unprivileged uid outside (its own user namespace): it cannot
    // change what the host set up for it.
    assert_eq!(ok(&s, &["run", "box-1", "--", "id", "-u"]), "0\n");
    let tag = setup.tag("box-1");
    let client = hob_client_of(&tag);
    let status = std::fs::read_to_string(format!("/proc/{client}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        !uid.split_whitespace().skip(1).any(|u| u == "0"),
        "the hob-client runs as host root: {uid}"
    );
    let out = gobs(&s, &["run", "box-1", "--", "hostname", "other"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "root inside could change the hostname"
    );
    assert_eq!(ok(&s, &["run", "box-1", "--", "hostname"]), "box-1\n");
    // Its own root: a write to /etc stays inside, and the state directory is not there.
    let marker = format!("gobs-container-test-{}", std::process::id());
    ok(
        &s,
        &[
            "run",
            "box-1",
            "--",
            "sh",
            "-c",
            &format!("echo inside > /etc/{marker}"),
        ],
    );
    assert_eq!(
        ok(
            &s,
            &["run", "box-1", "--", "cat", &format!("/etc/{marker}")]
        ),
        "inside\n"
    );
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "the write reached the host's /etc"
    );
    let out = gobs(&s, &["run", "box-1", "--", "ls", &s.display().to_string()]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the state directory is visible inside"
    );
    // Its own address on the bridge.
    let addr = ok(
        &s,
        &["run", "box-1", "--", "ip", "-4", "addr", "show", "eth0"],
    );
    assert!(addr.contains("inet 10."), "{addr}");
    // Output streams whole, past what a whole answer keeps (256 KiB on the machine).
    let big = ok(
        &s,
        &["run", "box-1", "--", "sh", "-c", "yes | head -c 400000"],
    );
    assert_eq!(big.len(), 400_000);
    assert_eq!(big, "y\n".repeat(200_000));

    // No file on the host holds the registration sturdyref: only the container's own
    // processes do. Replayed, it is refused over the network, saying why.
    let dir = setup.container_dir("box-1");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["console.log", "root"]);
    let hob_client = hob_client_of(&setup.tag("box-1"));
    let environ = std::fs::read(format!("/proc/{hob_client}/environ")).unwrap();
    let uri = environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(b"GOBS_HOB_REGISTRATION="))
        .map(|uri| String::from_utf8(uri.to_vec()).unwrap())
        .expect("the hob-client was given its registration");
    let client_dir = tempfile::tempdir().unwrap();
    let replay = bare()
        .args(["hob-client", "--dir"])
        .arg(client_dir.path())
        .args(["--registration", &uri])
        .output()
        .unwrap();
    let err = text(&replay.stderr);
    assert_eq!(replay.status.code(), Some(1), "{err}");
    assert!(err.contains("already used"), "{err}");

    let anchor = setup.anchor("box-1");
    let net_ns = ns_of(&anchor.to_string(), "net");
    assert!(!net_ns.is_empty());
    ok(&s, &["destroy-machine", "box-1"]);
    assert!(machine_names(&s).is_empty());
    assert_nothing_left(&setup, "box-1", anchor, &tag, &net_ns);

    // Destroyed: with the bridge back for another machine (the boss listens only there),
    // the boss still refuses the spent registration, saying why.
    ok(&s, &["create-machine", "box-2"]);
    let again = bare()
        .args(["hob-client", "--dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .args(["--registration", &uri])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("registration refused"),
        "{}",
        text(&again.stderr)
    );
    ok(&s, &["destroy-machine", "box-2"]);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_container_outlives_a_killed_daemon_and_a_killed_hob_client() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::containers("");
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    ok(&s, &["create-machine", "box-2"]);
    assert_eq!(ok(&s, &["run", "box-2", "--", "hostname"]), "box-2\n");

    setup.kill_daemon();
    setup.start_daemon();
    assert_eq!(ok(&s, &["run", "box-2", "--", "hostname"]), "box-2\n");
    wait_status(&s, "box-2", "running");

    // Kill the machine's hob-client: unreachable, then running again once its init started
    // it again.
    let tag = setup.tag("box-2");
    let client = hob_client_of(&tag).to_string();
    assert!(
        Command::new("kill")
            .args(["-9", &client])
            .status()
            .unwrap()
            .success()
    );
    let down = wait_status(&s, "box-2", "unreachable");
    eprintln!("unreachable {down:?} after the hob-client was killed");
    let shown = ok(&s, &["machine", "box-2"]);
    assert!(shown.contains("unreachable since"), "{shown}");
    wait_status(&s, "box-2", "running");
    assert_eq!(ok(&s, &["run", "box-2", "--", "hostname"]), "box-2\n");
    ok(&s, &["destroy-machine", "box-2"]);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_copied_credential_in_another_container_is_a_conflict_and_never_serves() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::containers("");
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    ok(&s, &["create-machine", "copy-1"]);
    ok(&s, &["create-machine", "copy-2"]);
    // Registered; its client writes its state once it has the boss's answer.
    let mut copy_1 = None;
    wait_for("copy-1's client to store its state", || {
        copy_1 = client_state_on(&s, "copy-1", "/hob/state").1;
        copy_1.is_some()
    });

    // copy-1's credential in copy-2 (as an earlier release's client.json, which the copy
    // moves into its own registry), and a second hob-client there on it.
    let copy_1 = copy_1.unwrap();
    let work = tempfile::tempdir().unwrap();
    let stolen = work.path().join("client.json");
    let json = serde_json::json!({
        "machine": copy_1.machine,
        "boss": copy_1.boss,
        "credential": gobs_app::hob_net::credential::encode(&copy_1.credential.unwrap()),
        "bindings": ["run", "put-file", "get-file"],
    });
    std::fs::write(&stolen, json.to_string()).unwrap();
    ok(&s, &["run", "copy-2", "--", "mkdir", "-p", "/tmp/copy"]);
    let to = stolen.to_str().unwrap();
    ok(&s, &["put-file", "copy-2", to, "/tmp/copy/client.json"]);
    let run = [
        "run",
        "copy-2",
        "--",
        "/hob/gobs-app",
        "hob-client",
        "--dir",
        "/tmp/copy",
    ];
    let out = gobs(&s, &run);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("credential conflict"), "{said}");
    assert!(said.contains("not machine \"copy-1\"'s own"), "{said}");

    // Shown on copy-1 with the proven location of the copy (its own node, in copy-2).
    let copy_identity = client_state_on(&s, "copy-2", "/tmp/copy").0.unwrap();
    let copy_at = format!("ocapn://{}.tcp-tls", copy_identity.designator());
    let json: serde_json::Value =
        serde_json::from_str(&ok(&s, &["machine", "copy-1", "--json"])).unwrap();
    assert_eq!(json["status"], "running");
    let error = json["error"].as_str().unwrap();
    assert!(error.starts_with("credential conflict at "), "{error}");
    assert!(error.contains(&copy_at), "{error}");
    let events = ok(&s, &["events", "--machine", "copy-1"]);
    assert!(events.contains(&copy_at), "{events}");

    // copy-1 is itself throughout.
    assert_eq!(ok(&s, &["run", "copy-1", "--", "hostname"]), "copy-1\n");
    ok(&s, &["destroy-machine", "copy-1"]);
    ok(&s, &["destroy-machine", "copy-2"]);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_machine_that_cannot_register_fails_with_the_reason_and_leaves_nothing() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::containers("register_timeout = \"2s\"\n");
    // Whatever the bridge sends the host is dropped: the container cannot reach the boss.
    let _cut = common::nft::NftTable::new(
        setup.bridge_name(),
        &format!(
            "chain input {{ type filter hook input priority filter - 20; policy accept; \
             iifname \"{}\" drop; }}",
            setup.bridge_name()
        ),
    );
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    let err = fails(&s, &["create-machine", "lost"]);
    assert!(err.contains("did not register within 2s"), "{err}");
    let shown = ok(&s, &["machine", "lost"]);
    assert!(shown.contains("failed"), "{shown}");
    assert!(!setup.container_dir("lost").exists());
    assert!(!Path::new(&format!("/sys/class/net/{}", setup.bridge_name())).exists());
    ok(&s, &["destroy-machine", "lost"]);
}

/// The points of a container's creation a kill is aimed at, each seen on the host as it
/// happens: the create just sent, its directory made, its root filesystem built, its init
/// started, its veth plugged (the hob-client registers after that).
const STAGES: [&str; 5] = ["sent", "dir", "root", "init", "veth"];

/// Removes a network interface on drop.
struct Link(String);

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// Everything of the container provider on the host for state directory `setup`: the
/// anchors, the veths, the cgroups and the bridge.
fn host_leftovers(setup: &Setup) -> Vec<String> {
    let mut left = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read_to_string(p.path().join("cmdline")).unwrap_or_default();
        if cmdline.contains("container-init") && cmdline.contains(&setup.s().display().to_string())
        {
            left.push(format!("process {}", p.file_name().to_string_lossy()));
        }
    }
    if Path::new(&format!("/sys/class/net/{}", setup.bridge_name())).exists() {
        left.push(format!("bridge {}", setup.bridge_name()));
    }
    left
}
