//! A state directory and its daemon for the tests of providers that make real machines
//! (containers, qemu VMs): the test writes the provider's section; on drop (a failed test
//! too) the daemon is killed, every machine destroyed, and, as a backstop should that have
//! failed, what a machine leaves on the host removed: its processes, a container's veth
//! and cgroup, the test's bridge and its firewall table.
//!
//! Each test file adds the methods only it needs in an `impl Setup` of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gobs_app::providers::container::cgroup::Cgroup;
use tempfile::TempDir;

use crate::common::{Daemon, gobs, machine_names, state};

pub struct Setup {
    pub dir: TempDir,
    /// The container bridge's name and the host's address on it, if the test made one.
    pub bridge: Option<(String, Ipv4Addr)>,
    pub daemon: Option<Daemon>,
}

impl Setup {
    /// A container provider named `container` on a bridge and subnet of this test's own
    /// ([`own_bridge`]), with `extra` lines in its section.
    pub fn containers(extra: &str) -> Setup {
        Setup::containers_on(own_bridge(), extra)
    }

    /// A container provider named `container` on bridge `bridge` with the host's address
    /// `ip` on it (the subnet is `ip`'s /24).
    pub fn containers_on((bridge, ip): (String, Ipv4Addr), extra: &str) -> Setup {
        let [a, b, c, _] = ip.octets();
        let config = format!(
            "default_provider = \"container\"\n[providers.container]\nkind = \"container\"\n\
             bridge = \"{bridge}\"\nsubnet = \"{a}.{b}.{c}.0/24\"\n{extra}"
        );
        Setup::with_config(&config, Some((bridge, ip)))
    }

    /// A state directory with `config` as its config file; `bridge` is the one the config
    /// names, if any, removed on drop.
    pub fn with_config(config: &str, bridge: Option<(String, Ipv4Addr)>) -> Setup {
        let mut setup = Setup::without_config();
        std::fs::write(setup.s().join("config.toml"), config).unwrap();
        setup.bridge = bridge;
        setup
    }

    /// A state directory without a config file: the defaults.
    pub fn without_config() -> Setup {
        Setup {
            dir: state(),
            bridge: None,
            daemon: None,
        }
    }

    pub fn s(&self) -> &Path {
        self.dir.path()
    }

    /// The bridge's name; fails the test if it has none.
    pub fn bridge_name(&self) -> &str {
        &self.bridge.as_ref().expect("a setup with a bridge").0
    }

    /// The host's address on the bridge; fails the test if it has none.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.bridge.as_ref().expect("a setup with a bridge").1
    }

    /// Starts the daemon; if it cannot, fails naming the processes that hold its lock
    /// (most often a daemon of an earlier test that was not stopped).
    pub fn start_daemon(&mut self) {
        let lock = self.s().join("daemon.lock");
        let started = std::panic::catch_unwind(|| Daemon::start(self.dir.path()));
        match started {
            Ok(daemon) => self.daemon = Some(daemon),
            Err(why) => panic!(
                "{}; processes holding {} open: {:?}",
                why.downcast_ref::<String>().map_or("", String::as_str),
                lock.display(),
                holders(&lock)
            ),
        }
    }

    /// Kills the daemon (`kill -9`: its machines live on) and reaps it.
    pub fn kill_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let mut child = d.child.take().unwrap();
            child.kill().unwrap();
            child.wait().unwrap();
        }
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
        // Backstop, should destroying have failed: the anchors and tags the container
        // provider recorded, and those of files (vms, and containers of earlier releases).
        let recorded = recorded_slots(&s);
        for kind in ["containers", "vms"] {
            for e in std::fs::read_dir(s.join(kind))
                .into_iter()
                .flatten()
                .flatten()
            {
                let slot = recorded.get(e.file_name().to_str().unwrap_or_default());
                let anchor = std::fs::read_to_string(e.path().join("anchor.pid"))
                    .ok()
                    .or_else(|| slot.and_then(|s| s[2].as_str().map(str::to_owned)));
                if let Some(record) = anchor
                    && let Some(pid) = record.split_whitespace().next()
                {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
                let tag = std::fs::read_to_string(e.path().join("tag"))
                    .ok()
                    .or_else(|| slot.and_then(|s| s[0].as_str().map(str::to_owned)));
                if let Some(tag) = tag {
                    let _ = Command::new("ip")
                        .args(["link", "del", &format!("gh{tag}")])
                        .stderr(Stdio::null())
                        .status();
                    if let Ok(group) = Cgroup::plan(&tag, 0, 0) {
                        let _ = group.remove(Duration::from_secs(10));
                    }
                }
            }
        }
        if let Some((bridge, _)) = &self.bridge {
            let _ = Command::new("ip")
                .args(["link", "del", bridge])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", &format!("gobs-{bridge}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The container provider's record of each machine (`[tag, octet, anchor]`), read from
/// the store of state directory `s`; empty if it cannot be read.
pub fn recorded_slots(s: &Path) -> serde_json::Map<String, serde_json::Value> {
    crate::common::procs::provider_field(s, "container", 1)
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// A bridge name and host address no other test (of this run or another) uses: the pid
/// is in both, with a count of the bridges this process made.
pub fn own_bridge() -> (String, Ipv4Addr) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    let bridge = format!("gt{:x}x{n}", pid & 0xff_ffff);
    let second = u8::try_from(160 + (pid >> 8) % 80 + n % 10).unwrap();
    let ip = Ipv4Addr::new(10, second, (pid % 256) as u8, 1);
    (bridge, ip)
}

/// The processes (pid and command line) with `file` open: whoever keeps a lock taken.
fn holders(file: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == file))
        {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{} {}",
                p.file_name().to_string_lossy(),
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}
