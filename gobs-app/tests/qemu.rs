//! Black-box tests of the `qemu` provider on the built binary, as root: a VM booted with
//! TCG registers within 60 s, runs commands on its own kernel, survives a killed daemon,
//! and leaves no qemu process or file when destroyed; `init` then `create-machine
//! --provider qemu` works with no editing. Skipped, saying so, without root, qemu, a kernel
//! in /boot or busybox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Daemon, gobs, machine_names, ok, state};
use tempfile::TempDir;

fn kernel() -> Option<PathBuf> {
    let mut found: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| {
            let release = p
                .file_name()?
                .to_str()?
                .strip_prefix("vmlinuz-")?
                .to_string();
            let key = release
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect();
            Some((key, p))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn can_run() -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: qemu tests need root");
        return false;
    }
    if !Path::new("/usr/bin/qemu-system-x86_64").is_file() {
        eprintln!("SKIPPED: qemu tests need qemu (apt-get install qemu-system-x86)");
        return false;
    }
    if kernel().is_none() {
        eprintln!("SKIPPED: qemu tests need a kernel in /boot (apt-get install linux-image-amd64)");
        return false;
    }
    if !Path::new("/bin/busybox").is_file() {
        eprintln!("SKIPPED: qemu tests need busybox (apt-get install busybox-static)");
        return false;
    }
    true
}

/// A state directory and its daemon; on drop (a failed test too) the daemon is killed and
/// every VM destroyed, with a kill of any qemu left as a backstop.
struct Setup {
    dir: TempDir,
    daemon: Option<Daemon>,
}

impl Setup {
    fn new(config: Option<&str>) -> Setup {
        let dir = state();
        if let Some(config) = config {
            std::fs::write(dir.path().join("config.toml"), config).unwrap();
        }
        Setup { dir, daemon: None }
    }

    fn s(&self) -> &Path {
        self.dir.path()
    }

    fn start_daemon(&mut self) {
        self.daemon = Some(Daemon::start(self.dir.path()));
    }

    fn kill_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let mut child = d.child.take().unwrap();
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn qemu_pid(&self, machine: &str) -> i32 {
        let record =
            std::fs::read_to_string(self.s().join("vms").join(machine).join("anchor.pid")).unwrap();
        record.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.kill_daemon();
        let s = self.dir.path().to_path_buf();
        if let Ok(names) = std::panic::catch_unwind(|| machine_names(&s)) {
            for m in names {
                let _ = gobs(&s, &["destroy-machine", &m]);
            }
        }
        if let Ok(entries) = std::fs::read_dir(s.join("vms")) {
            for e in entries.flatten() {
                if let Ok(record) = std::fs::read_to_string(e.path().join("anchor.pid"))
                    && let Some(pid) = record.split_whitespace().next()
                {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
        }
    }
}

/// Whether `pid` is a running qemu process (a zombie waiting for init to reap it is not).
fn is_qemu(pid: i32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true);
    !zombie
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("qemu"))
}

#[test]
fn a_tcg_vm_registers_within_60_s_runs_on_its_own_kernel_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let mut setup = Setup::new(Some(
        "default_provider = \"vm\"\n[providers.vm]\nkind = \"qemu\"\naccel = \"tcg\"\n\
         register_timeout = \"60s\"\nmemory = \"512MiB\"\n",
    ));
    let s = setup.s().to_path_buf();
    setup.start_daemon();
    // The registration deadline is 60 s: created means registered within it.
    let created = ok(&s, &["create-machine", "guest1"]);
    assert!(created.contains("running"), "{created}");
    let release = kernel()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    assert_eq!(
        ok(&s, &["run", "guest1", "--", "uname", "-r"]),
        format!("{release}\n")
    );
    assert_eq!(ok(&s, &["run", "guest1", "--", "hostname"]), "guest1\n");
    // A VM's root is the initramfs, not the host's: the state directory is not there.
    let listed = gobs(&s, &["run", "guest1", "--", "ls", &s.display().to_string()]);
    assert!(!listed.status.success());
    let pid = setup.qemu_pid("guest1");
    assert!(is_qemu(pid));

    // The VM outlives a killed daemon, and its hob-client attaches to the next one.
    setup.kill_daemon();
    assert!(is_qemu(pid));
    setup.start_daemon();
    common::wait_for("guest1 running again", || {
        ok(&s, &["machine", "guest1"]).contains("running")
    });
    assert_eq!(ok(&s, &["run", "guest1", "--", "echo", "back"]), "back\n");

    ok(&s, &["destroy-machine", "guest1"]);
    assert!(
        !is_qemu(pid),
        "qemu pid {pid} is still running after destroy"
    );
    assert!(!s.join("vms").exists(), "the VMs' directory is left behind");
    assert_eq!(machine_names(&s), Vec::<String>::new());
}

#[test]
fn init_then_create_machine_with_the_qemu_provider_needs_no_editing() {
    if !can_run() {
        return;
    }
    let mut setup = Setup::new(None);
    let s = setup.s().to_path_buf();
    ok(&s, &["init"]);
    let config = std::fs::read_to_string(s.join("config.toml")).unwrap();
    assert!(config.contains("[providers.qemu]"), "{config}");
    setup.start_daemon();
    let created = ok(&s, &["create-machine", "fresh", "--provider", "qemu"]);
    assert!(created.contains("running"), "{created}");
    let pid = setup.qemu_pid("fresh");
    assert_eq!(ok(&s, &["run", "fresh", "--", "hostname"]), "fresh\n");
    ok(&s, &["destroy-machine", "fresh"]);
    assert!(
        !is_qemu(pid),
        "qemu pid {pid} is still running after destroy"
    );
}
