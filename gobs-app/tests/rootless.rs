//! A rootless container, made, used and destroyed by an unprivileged user (`nobody`, through
//! `runuser` from a test running as root) on a state directory it owns, with no config file:
//! the default provider on a host with user namespaces, busybox and pasta is `container`.
//! The machine is a host of its own (hostname, root inside, an unprivileged user outside,
//! namespaces it cannot reconfigure), reaches no port of the host's loopback but the boss's,
//! and leaves nothing behind: no process, mount, network namespace or file. Needs
//! [`ROOTLESS_CONTAINER`]: reported as ignored without `GOBS_REQUIRE_PRIVILEGED` (or `CI`),
//! failing by name with it when the machine lacks one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/setup.rs"]
mod setup;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::needs::ROOTLESS_CONTAINER;
use common::{bin, text};

const USER: &str = "nobody";

/// A state directory owned by [`USER`]; on drop (a failed test too) its machines are
/// destroyed, and, as a backstop, the processes they recorded killed.
struct RootlessState {
    dir: PathBuf,
}

impl RootlessState {
    fn new() -> RootlessState {
        let dir = std::env::temp_dir().join(format!(
            "gobs-rootless-{}-{:08x}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let status = Command::new("chown")
            .args([USER, &dir.display().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "chown {USER} {}", dir.display());
        RootlessState { dir }
    }

    /// `gobs-app ARGS` as [`USER`] on this state directory, with a clean environment.
    fn gobs(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", USER, "--"])
            .arg(bin())
            .arg("--state-dir")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::null());
        for var in [
            "GOBS_CONFIG",
            "GOBS_STATE_DIR",
            "XDG_STATE_HOME",
            "RUST_LOG",
            "GOBS_DEFAULT_PROVIDER",
        ] {
            cmd.env_remove(var);
        }
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.gobs(args);
        assert!(
            out.status.success(),
            "gobs-app {args:?} as {USER} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// The pid of the machine's pasta, as the provider recorded it in its store.
    fn pasta(&self, machine: &str) -> i32 {
        let slot = setup::recorded_slots(&self.dir)
            .get(machine)
            .cloned()
            .unwrap_or_default();
        common::procs::pid_of(&slot[3]).expect("the provider recorded pasta")
    }

    /// The pid of the machine's anchor, as the provider recorded it in its store.
    fn anchor(&self, machine: &str) -> i32 {
        let slot = setup::recorded_slots(&self.dir)
            .get(machine)
            .cloned()
            .unwrap_or_default();
        let record = slot[2].as_str().expect("the provider recorded the anchor");
        record.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for RootlessState {
    fn drop(&mut self) {
        let _ = self.gobs(&["destroy-machine", "box-1"]);
        for e in std::fs::read_dir(self.dir.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let pasta = e.path().join("pasta.pid");
            let started = [("--dir", e.path()), ("-P", pasta)];
            for pid in started
                .iter()
                .flat_map(|(f, v)| common::procs::started_with(f, v))
            {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).unwrap();
    u32::from_le_bytes(bytes)
}

fn ns_of(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Every process (pid and command line) whose `kind` namespace is `ns`, or whose command
/// line names `path`.
fn processes_of(kind: &str, ns: &str, path: &Path) -> Vec<String> {
    let path = path.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .filter_map(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (ns_of(&p, kind) == ns || cmdline.contains(&path)).then(|| format!("{p} {cmdline}"))
        })
        .collect()
}

fn uid_of(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (to become nobody), user namespaces for users, busybox-static and passt: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn an_unprivileged_user_makes_uses_and_destroys_a_container_leaving_nothing() {
    gobs_testkit::need(ROOTLESS_CONTAINER);
    let state = RootlessState::new();
    // No config file and no --provider: the default is the most real provider here.
    let created = state.ok(&["create-machine", "box-1"]);
    assert!(
        created.contains("provider container") && created.contains("running"),
        "{created}"
    );
    assert_eq!(state.ok(&["run", "box-1", "--", "hostname"]), "box-1\n");
    assert_eq!(state.ok(&["run", "box-1", "--", "id", "-u"]), "0\n");
    let anchor = state.anchor("box-1");
    let pasta = state.pasta("box-1");
    let nobody_uid = text(
        &Command::new("id")
            .args(["-u", USER])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(
        uid_of(anchor),
        nobody_uid.trim(),
        "the container's init runs as {USER}"
    );
    assert_eq!(uid_of(pasta), nobody_uid.trim(), "pasta runs as {USER}");
    let net_ns = ns_of(&anchor.to_string(), "net");
    let mnt_ns = ns_of(&anchor.to_string(), "mnt");
    for kind in ["net", "pid", "mnt", "user", "uts"] {
        let inside = state.ok(&[
            "run",
            "box-1",
            "--",
            "readlink",
            &format!("/proc/self/ns/{kind}"),
        ]);
        assert_ne!(
            inside.trim(),
            ns_of("self", kind),
            "the {kind} namespace is the host's"
        );
    }
    // Root inside owns none of its namespaces: it cannot rename itself or bring up the
    // network interface pasta left down.
    for command in [
        &["hostname", "other"][..],
        &["ip", "link", "set", "eth0", "up"],
    ] {
        let mut args = vec!["run", "box-1", "--"];
        args.extend_from_slice(command);
        let out = state.gobs(&args);
        assert_ne!(
            out.status.code(),
            Some(0),
            "root inside could run {command:?}"
        );
    }
    assert_eq!(state.ok(&["run", "box-1", "--", "hostname"]), "box-1\n");
    // A port on the host's loopback other than the boss's is out of reach.
    let host_service = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host_service.local_addr().unwrap().port().to_string();
    let out = state.gobs(&["run", "box-1", "--", "nc", "-w", "3", "127.0.0.1", &port]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the container reached the host's 127.0.0.1:{port}: {}",
        text(&out.stdout)
    );
    // Its own root filesystem: a write to /etc stays inside.
    state.ok(&[
        "run",
        "box-1",
        "--",
        "sh",
        "-c",
        "echo inside > /etc/marker",
    ]);
    assert_eq!(
        state.ok(&["run", "box-1", "--", "cat", "/etc/marker"]),
        "inside\n"
    );
    assert!(!Path::new("/etc/marker").exists());

    assert!(
        state
            .ok(&["destroy-machine", "box-1"])
            .contains("destroyed")
    );
    assert_eq!(
        processes_of("net", &net_ns, &state.dir),
        Vec::<String>::new(),
        "processes of the container (its net namespace, or naming its state directory)"
    );
    assert_eq!(
        processes_of("mnt", &mnt_ns, &state.dir),
        Vec::<String>::new(),
        "processes in the container's mount namespace"
    );
    for pid in [anchor, pasta] {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z"),
            "process {pid} of the container still runs"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let here = state.dir.display().to_string();
    assert!(
        !mounts.contains(&here),
        "mounts under {here} are left:\n{mounts}"
    );
    let left: Vec<_> = std::fs::read_dir(state.dir.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(
        left,
        Vec::<PathBuf>::new(),
        "files of the container are left"
    );
    assert!(state.ok(&["list-machines"]).starts_with("no machines"));
}
