//! The `container` provider: each machine is a Linux container whose hob-client registers
//! with the boss over OCapN ([`crate::hob_net`]).
//!
//! Creating machine M:
//!
//! 1. **provision** (off the vat): brings up the provider's bridge, the boss's listener
//!    on it and its firewall ([`net::bring_up`]), builds M's root filesystem ([`rootfs`]:
//!    busybox, a minimal `/etc`), makes its cgroup ([`cgroup`]: memory and process
//!    limits), issues its one-time registration sturdyref on the boss's gateway, and starts
//!    its init ([`init`]) in new mount, UTS, IPC, network and PID namespaces; puts it in the
//!    cgroup, gives it its own address on the bridge ([`net`]), and lets it go. Its spec
//!    (with the registration sturdyref) goes down the init's stdin, never into a file.
//!    The init pivots into the root filesystem, sets the hostname to M and starts the
//!    hob-client, which registers. Provisioning waits for that registration, at most
//!    `register_timeout`; past it, or if the container's init dies, creating fails with the
//!    reason (and the end of the container's console log).
//! 2. **boot**: the machine actor, whose `run` goes to the hob-client over OCapN; the
//!    container's anchor (its init, by pid and start time) goes into the provider's record
//!    of the machine ([`Slot`]), beside its tag (which names its veth and cgroup) and, for
//!    a rootless one, its `pasta`.
//! 3. **teardown** (destroy, or a failed creation): revokes the registration, kills the
//!    container's anchor (which takes its PID namespace, so every process, with it) and
//!    whatever is left in its cgroup, removes the veth, the cgroup, the machine directory
//!    (its root filesystem and console log), and the bridge with the provider's last
//!    machine. Mounts lived in the container's own mount namespace and went with it.
//!    A creation that ended before its anchor was recorded (a daemon killed) leaves it in
//!    the cgroup, or waiting for its go on a pipe that closed: either way it ends.
//!
//! What the provider's record names is all there is of a machine on the host: its slot
//! (tag, address, anchor, pasta) and its directory `<state dir>/containers/M`. Containers
//! made by earlier releases also have `tag`, `spec.json`, `anchor.pid` and `pasta.pid`
//! files there: teardown reads them when the record lacks what they hold.
//!
//! In the config:
//!
//! ```toml
//! [providers.container]
//! kind = "container"
//! # busybox = "/bin/busybox"     # Debian package busybox-static
//! # memory = "256MiB"            # memory limit of each machine
//! # pids = 512                   # process limit of each machine
//! # register_timeout = "30s"     # a machine must register within this long
//! # run_timeout = "1h"           # a command is killed after this long
//! # hob_listen = "10.213.7.1:0"  # the boss's OCapN (tcp-tls) listener: only on the
//! #                              # bridge's address (its `.1`), where containers reach it;
//! #                              # port 0: pick one at the first start and keep it
//! # subnet = "10.213.7.0/24"     # the bridge's /24 (default: derived from the state dir)
//! # bridge = "gobs1a2b3c"        # the bridge's name (default: derived from the state dir)
//! # user_namespace = true        # root inside is an unprivileged uid outside
//! # isolated = true              # machines reach only the boss's listener: not each
//! #                              # other, nor the host's services, nor beyond the host
//! ```
//!
//! As root it needs iproute2, busybox-static and (unless `isolated = false`) nftables;
//! without them creating a machine fails with a message saying which is missing. Not as
//! root, containers are **rootless** ([`rootless`]): busybox-static and passt (`pasta`, the
//! machine's one way to the boss's listener on the host's loopback) on a host that lets
//! users make user namespaces; `subnet`, `bridge`, `isolated` and `user_namespace` do not
//! apply there, and limits only where the host delegates a cgroup. Where the
//! host allows user namespaces, root inside a machine is host uid `2^30 + k·65536` (k from
//! the machine's random tag), with no capability over its own network, mount or UTS
//! namespaces (they belong to the host's user namespace, and were set up before it entered
//! its own).

pub mod cgroup;
pub mod firewall;
pub mod init;
pub mod net;
mod provision;
pub mod rootfs;
pub mod rootless;
mod settings;

pub use provision::{Mode, uid_base_of};

pub(crate) use settings::parse_size;
pub use settings::{ContainerConfig, ContainerSettings, MACHINES_DIR};

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use data_encoding::HEXLOWER;
use gobs_runtime::{Ref, define_actor};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::progress::Progress;
use crate::providers::lifecycle::Reconnect;
use crate::providers::remote_machine::RemoteMachine;
use crate::providers::{Provider, ProviderCore, ProviderError};

/// This process's own binary.
const SELF_EXE: &str = "/proc/self/exe";
/// How long teardown waits for a container's processes to end.
pub const KILL_LIMIT: Duration = Duration::from_secs(10);
pub use super::remote_machine::RECONNECT_WAIT;

/// Where one machine is plugged: its tag (names its veth and cgroup) and address, and
/// the process whose life is the container's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Random hex, different on every creation.
    pub tag: String,
    /// Its last address octet on the bridge.
    pub octet: u8,
    /// Its anchor (`anchor_record`: pid and start time) once it was created; `None`
    /// before, and in records of earlier releases (their `anchor.pid` names it).
    #[serde(default)]
    pub anchor: Option<String>,
    /// A rootless container's `pasta` (`anchor_record`) once it was created; `None` as
    /// root, before, and in records of earlier releases (their `pasta.pid` names it).
    #[serde(default)]
    pub pasta: Option<String>,
}

/// What provisioning a container started, for its [`Slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Its anchor (`anchor_record`).
    pub anchor: String,
    /// Its `pasta` (rootless only).
    pub pasta: Option<String>,
}

/// A provider of container machines.
#[define_actor(on_restore = ContainerProvider::after_restart)]
#[derive(Debug)]
pub struct ContainerProvider {
    core: ProviderCore<RemoteMachine, ContainerSettings>,
    /// Each machine's slot, made or being made.
    slots: BTreeMap<String, Slot>,
}

#[define_actor]
impl ContainerProvider {
    /// Its machines that are up, sorted.
    pub fn machine_names(&self) -> Vec<String> {
        self.core.book.names()
    }

    /// Machine `name`'s address on the bridge.
    pub fn address_of(&self, name: String) -> Option<String> {
        let [a, b, c] = self.core.settings.subnet;
        self.slots
            .get(&name)
            .map(|s| Ipv4Addr::new(a, b, c, s.octet).to_string())
    }
}

impl ContainerProvider {
    fn after_restart(&mut self) {
        self.core.after_restart();
    }

    /// With machines out there, what brings their bridge, listener and firewall to what
    /// the settings say (to run off the vat).
    fn bring_up_again(&self) -> Option<Reconnect> {
        let gateway = self.core.gateway().ok()?;
        if self.slots.is_empty() || !gateway.may_start() {
            return None;
        }
        let settings = self.core.settings.clone();
        Some(Box::new(move || {
            provision::bring_up(&settings, &gateway).map(|_| ())
        }))
    }

    fn slot_for(&mut self, machine: &str) -> Result<Slot, String> {
        if let Some(s) = self.slots.get(machine) {
            return Ok(s.clone());
        }
        let used: Vec<u8> = self.slots.values().map(|s| s.octet).collect();
        let octet = (2..=254u8)
            .find(|o| !used.contains(o))
            .ok_or_else(|| {
                "the bridge's /24 is full (252 machines); give another container provider \
                 another subnet"
                    .to_string()
            })?;
        let mut tag = [0u8; 4];
        getrandom::fill(&mut tag).map_err(|e| format!("cannot draw a random tag: {e}"))?;
        let slot = Slot {
            tag: HEXLOWER.encode(&tag),
            octet,
            anchor: None,
            pasta: None,
        };
        self.slots.insert(machine.to_string(), slot.clone());
        Ok(slot)
    }
}

impl Provider for ContainerProvider {
    type Machine = RemoteMachine;
    /// The container's anchor and pasta (`anchor_record`: pid and start time).
    type Provisioned = Started;
    type Config = ContainerConfig;
    type Settings = ContainerSettings;
    const KIND: &'static str = "container";
    const OLD_KINDS: &'static [&'static str] = &[];

    fn settings(config: ContainerConfig, state_dir: &Path) -> Result<ContainerSettings, String> {
        ContainerSettings::from_config(config, state_dir)
    }

    fn create_provider(core: ProviderCore<RemoteMachine, ContainerSettings>) -> Self {
        ContainerProvider {
            core,
            slots: BTreeMap::new(),
        }
    }

    fn core(&self) -> &ProviderCore<RemoteMachine, ContainerSettings> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut ProviderCore<RemoteMachine, ContainerSettings> {
        &mut self.core
    }

    /// Takes the config's settings; with machines out there, their bridge, listener and
    /// firewall follow at once (what they reach is not theirs to keep).
    fn apply_settings(&mut self, settings: ContainerSettings) {
        self.core.settings = settings;
        // At once, as the backend starts the provider, so the config holds when it is open.
        // Only on a running gateway (started when the gateway was given): starting one
        // waits on the registry, which a turn must not.
        let running = self.core.gateway().ok().and_then(|g| g.running());
        if let (Some(_), Some(bring_up)) = (running, self.bring_up_again())
            && let Err(e) = bring_up()
        {
            tracing::error!("container provider {}: {e}", self.core.name);
        }
    }

    fn gateway_given(&self) -> Option<Reconnect> {
        self.core.pass_gateway_on();
        // Machines are out there, waiting to attach again: listen for them.
        self.bring_up_again()
    }

    fn provision(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<Started, ProviderError> + Send + 'static {
        let slot = self.slot_for(machine);
        let settings = self.core.settings.clone();
        let gateway = self.core.gateway();
        let machine = machine.to_string();
        move || {
            let (slot, gateway) = (slot.map_err(ProviderError)?, gateway.map_err(ProviderError)?);
            provision::provision(&settings, &gateway, &machine, &slot, &progress)
                .map_err(ProviderError)
        }
    }

    fn boot(
        &mut self,
        machine: &str,
        started: Started,
    ) -> impl FnOnce(Option<Ref<HobClientPresence>>) -> Ref<RemoteMachine> + Send + 'static {
        if let Some(slot) = self.slots.get_mut(machine) {
            slot.anchor = Some(started.anchor);
            slot.pasta = started.pasta;
        }
        let (name, run_timeout_secs) = (machine.to_string(), self.core.settings.run_timeout_secs);
        // Provisioning needed it, so it is there.
        let gateway = self.core.gateway().ok();
        move |_| gobs_runtime::spawn(RemoteMachine::booted(name, run_timeout_secs, gateway))
    }

    fn teardown(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<(), ProviderError> + Send + 'static {
        let slot = self.slots.remove(machine);
        let last = self.slots.is_empty();
        let settings = self.core.settings.clone();
        let gateway = self.core.gateway();
        let machine = machine.to_string();
        move || {
            gateway
                .and_then(|g| provision::teardown(&settings, &g, &machine, slot, last, &progress))
                .map_err(ProviderError)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn settings(toml_text: &str) -> Result<ContainerSettings, String> {
        let config: ContainerConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        ContainerProvider::settings(config, Path::new("/state"))
    }

    #[test]
    fn defaults_are_derived_from_the_state_directory() {
        let a = ContainerSettings::defaults(Path::new("/a"));
        let b = ContainerSettings::defaults(Path::new("/b"));
        assert_ne!(a.bridge, b.bridge);
        assert_ne!(a.subnet, b.subnet);
        assert_eq!(a, ContainerSettings::defaults(Path::new("/a")));
        assert!(a.bridge.len() <= 15);
        assert_eq!(a.subnet[0], 10);
        assert_eq!(settings("").unwrap(), ContainerSettings::defaults(Path::new("/state")));
    }

    #[test]
    fn sizes_subnets_and_names_are_read_or_refused_saying_how_to_write_them() {
        let s = settings("memory = \"1GiB\"\nsubnet = \"10.9.8.0/24\"\nbridge = \"br-x\"\n")
            .unwrap();
        assert_eq!((s.memory, s.subnet, s.bridge.as_str()), (1 << 30, [10, 9, 8], "br-x"));
        let err = settings("memory = \"lots\"\n").unwrap_err();
        assert!(err.contains("256MiB"), "{err}");
        let err = settings("memory = \"5TB\"\n").unwrap_err();
        assert!(err.contains("B, KiB, MiB, GiB"), "{err}");
        let err = settings("memory = \"1MiB\"\n").unwrap_err();
        assert!(err.contains("at least 16MiB"), "{err}");
        let err = settings("subnet = \"10.9.8.1/16\"\n").unwrap_err();
        assert!(err.contains("A.B.C.0/24"), "{err}");
        let err = settings("bridge = \"a-name-far-too-long\"\n").unwrap_err();
        assert!(err.contains("1 to 15"), "{err}");
        let err = settings("hob_listen = \"everywhere\"\n").unwrap_err();
        assert!(err.contains("IP:PORT"), "{err}");
        let err = settings("subnet = \"10.9.8.0/24\"\nhob_listen = \"127.0.0.1:7731\"\n").unwrap_err();
        assert!(err.contains("write \"10.9.8.1:7731\""), "{err}");
        // Every address, as earlier releases wrote it: the bridge's, the port kept.
        let s = settings("subnet = \"10.9.8.0/24\"\nhob_listen = \"0.0.0.0:7731\"\n").unwrap();
        assert_eq!(s.hob_listen.to_string(), "10.9.8.1:7731");
        let s = settings("subnet = \"10.9.8.0/24\"\nhob_listen = \"10.9.8.1:7731\"\n").unwrap();
        assert_eq!(s.hob_listen.to_string(), "10.9.8.1:7731");
        let s = settings("subnet = \"10.9.8.0/24\"\nisolated = false\n").unwrap();
        assert_eq!((s.hob_listen.to_string().as_str(), s.isolated), ("10.9.8.1:0", false));
        let err = settings("pids = 2\n").unwrap_err();
        assert!(err.contains("at least 8"), "{err}");
    }

    #[test]
    fn uid_blocks_stay_in_range() {
        for tag in ["00000000", "ffffffff", "1234abcd", "not-hex"] {
            let base = uid_base_of(tag);
            assert!(base >= 1 << 30);
            assert!(u64::from(base) + u64::from(init::ID_COUNT) < u64::from(u32::MAX));
        }
    }
}
