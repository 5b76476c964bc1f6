//! Black-box tests of the `qemu` provider on the built binary, as root: a VM booted with
//! TCG registers within 60 s, runs commands on its own kernel, survives a killed daemon,
//! and leaves no qemu process or file when destroyed; `init` then `create-machine
//! --provider qemu` works with no editing; a VM on a host agent is made, used and
//! destroyed through the boss. Each test needs root, qemu, a kernel in /boot and busybox
//! ([`NEEDS`]): reported as ignored without `GOBS_REQUIRE_PRIVILEGED` (or `CI`), failing
//! by name with it when the machine lacks one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/setup.rs"]
mod setup;

use common::needs::QEMU as NEEDS;
use common::{gobs, machine_names, ok};
use setup::Setup;

impl Setup {
    fn qemu_pid(&self, machine: &str) -> i32 {
        let record =
            std::fs::read_to_string(self.s().join("vms").join(machine).join("anchor.pid")).unwrap();
        record.split_whitespace().next().unwrap().parse().unwrap()
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
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, qemu-system-x86, a kernel in /boot and busybox-static: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_tcg_vm_registers_runs_on_its_own_kernel_and_leaves_nothing() {
    gobs_testkit::need(NEEDS);
    // The registration deadline only bounds a hang: how fast a TCG guest boots depends on
    // the machine and its load, and is not what this test claims.
    let mut setup = Setup::with_config(
        "default_provider = \"vm\"\n[providers.vm]\nkind = \"qemu\"\naccel = \"tcg\"\n\
         register_timeout = \"600s\"\nmemory = \"512MiB\"\n",
        None,
    );
    let s = setup.s().to_path_buf();
    setup.start_daemon();
    // Created means registered: the hob-client in the guest reached the boss.
    let created = ok(&s, &["create-machine", "guest1"]);
    assert!(created.contains("running"), "{created}");
    let release = gobs_testkit::boot_kernel()
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
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, qemu-system-x86, a kernel in /boot and busybox-static: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn init_then_create_machine_with_the_qemu_provider_needs_no_editing() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::without_config();
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

/// The pids of the qemu processes whose command line names a path under `dir`.
fn qemus_under(dir: &std::path::Path) -> Vec<i32> {
    let dir = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            is_qemu(*pid) && cmdline.contains(&dir)
        })
        .collect()
}

/// A VM made on a host agent (on loopback): the boss creates it through the agent, runs
/// commands on it, and destroys it, leaving no qemu process nor VM directory on the host.
#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, qemu-system-x86, a kernel in /boot and busybox-static: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_vm_on_a_host_agent_is_made_used_and_destroyed_through_the_boss() {
    gobs_testkit::need(NEEDS);
    let boss = common::state();
    std::fs::write(
        boss.path().join("config.toml"),
        "[hosts]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let b = boss.path();
    let _daemon = common::Daemon::start(b);
    // Declared before the host's state, so the agent still serves when that state is
    // dropped (a failed test too): its machines are destroyed through it.
    let agent;
    let host = Setup::with_config(
        "default_provider = \"vm\"\n[providers.vm]\nkind = \"qemu\"\naccel = \"tcg\"\n\
         register_timeout = \"600s\"\nmemory = \"512MiB\"\n",
        None,
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(b, &["host", "add", "h1", "--json"])).unwrap();
    let uri = json["enrolment"].as_str().unwrap();
    let args = ["--listen", "127.0.0.1:0", "--join", uri];
    agent = common::fleet::Agent::start(host.s(), None, &args).unwrap();
    common::wait_for("host h1 to be reachable", || {
        ok(b, &["hosts"])
            .lines()
            .any(|l| l.starts_with("h1 ") && l.contains("reachable") && !l.contains("unreachable"))
    });

    let created = ok(b, &["create-machine", "guest1", "--host", "h1"]);
    assert!(created.contains("running"), "{created}");
    let listed = ok(b, &["list-machines"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("guest1 ") && l.contains(" h1 ") && l.contains(" vm ")),
        "{listed}"
    );
    assert_eq!(ok(b, &["run", "guest1", "--", "hostname"]), "guest1\n");
    assert_eq!(
        qemus_under(host.s()).len(),
        1,
        "one qemu for the VM on the host"
    );

    ok(b, &["destroy-machine", "guest1"]);
    assert_eq!(qemus_under(host.s()), Vec::<i32>::new());
    assert!(!host.s().join("vms").join("guest1").exists());
    assert_eq!(machine_names(b), Vec::<String>::new());
    drop(host);
    drop(agent);
}
