//! The `qemu` provider: each machine is a QEMU virtual machine whose hob-client registers
//! with the boss over OCapN ([`crate::hob_net`]), like a container machine's.
//!
//! Creating machine M:
//!
//! 1. **provision** (off the vat): issues M's one-time registration sturdyref on the boss's
//!    gateway (dialled at [`net::BOSS_FROM_GUEST`], which qemu forwards to the listener on
//!    loopback: the guest reaches nothing else, see [`net`]), writes M's initramfs ([`initramfs`]: busybox, the virtio modules, the
//!    hob-client with its libraries, the sturdyref, an `/init`), and boots the kernel with
//!    it in `qemu-system-x86_64`, in a session of its own (the VM outlives the daemon that
//!    made it). With `accel = "auto"` it boots with KVM first; if the guest's init has not
//!    said it is up within [`KVM_PROBE`] (where `/dev/kvm` opens but KVM guests hang), it
//!    kills that VM, warns, and boots with TCG (and this daemon goes on with TCG).
//!    Provisioning waits for the registration, at most `register_timeout`; past it, or if
//!    qemu exits, creating fails with the reason and the end of the VM's console.
//! 2. **boot**: the machine actor, whose `run` goes to the hob-client over OCapN; the
//!    VM's anchor (its qemu, by pid and start time) goes into the provider's record of the
//!    machine.
//! 3. **teardown**: revokes the registration, kills the qemu process the record names (or,
//!    with none recorded, the one started with the machine's initramfs: a daemon ended
//!    before it recorded it) and waits for it to end, removes the machine's directory
//!    (initramfs, console log).
//!
//! In the config:
//!
//! ```toml
//! [providers.qemu]
//! kind = "qemu"
//! # qemu = "qemu-system-x86_64"   # Debian package qemu-system-x86
//! # kernel = "/boot/vmlinuz-..."   # default: the newest /boot/vmlinuz-* (linux-image-amd64)
//! # modules = "/lib/modules/..."   # default: /lib/modules/ the kernel's release
//! # busybox = "/bin/busybox"       # Debian package busybox-static
//! # memory = "512MiB"
//! # cpus = 1
//! # accel = "auto"                 # "kvm", "tcg" or "auto" (KVM if it boots, else TCG)
//! # register_timeout = "90s"
//! # run_timeout = "1h"
//! # hob_listen = "127.0.0.1:0"     # the boss's OCapN listener: on loopback only, where
//! #                                # qemu forwards the guest; port 0: pick one once
//! ```

pub mod initramfs;
pub mod net;
mod vm;

#[cfg(test)]
pub(crate) use vm::stripped_copy;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gobs_runtime::{Ref, define_actor};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::config::human::HumanDuration;
use crate::hob_net::Place;
use crate::progress::Progress;
use crate::providers::container;
use crate::providers::lifecycle::Reconnect;
use crate::providers::remote_machine::RemoteMachine;
use crate::providers::{Provider, ProviderCore, ProviderError};

/// Directory of the qemu machines, inside the state directory.
pub const MACHINES_DIR: &str = "vms";
/// How long a KVM boot may take to reach the guest's init before `accel = "auto"` gives up
/// on KVM.
pub const KVM_PROBE: Duration = Duration::from_secs(20);

/// Which accelerator to boot with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM if a guest boots with it, TCG (with a warning) otherwise.
    Auto,
    /// KVM only.
    Kvm,
    /// TCG (emulation) only.
    Tcg,
}

/// The keys of a qemu provider's `[providers.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuConfig {
    /// The qemu binary (default `qemu-system-x86_64`, found on PATH).
    pub qemu: Option<PathBuf>,
    /// The guest's kernel (default: the newest `/boot/vmlinuz-*`).
    pub kernel: Option<PathBuf>,
    /// The kernel's modules directory (default `/lib/modules/RELEASE`).
    pub modules: Option<PathBuf>,
    /// Busybox on the host (default `/bin/busybox`).
    pub busybox: Option<PathBuf>,
    /// Memory of each VM (`"512MiB"`, `"1GiB"`).
    pub memory: Option<String>,
    /// CPUs of each VM.
    pub cpus: Option<u32>,
    /// `"auto"`, `"kvm"` or `"tcg"`.
    pub accel: Option<Accel>,
    /// A machine must register within this long.
    pub register_timeout: Option<HumanDuration>,
    /// A command is killed after this long.
    pub run_timeout: Option<HumanDuration>,
    /// The boss's OCapN listener, `IP:PORT` with a loopback IP (port 0 picks one once).
    pub hob_listen: Option<String>,
}

/// How a qemu provider works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuSettings {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The qemu binary.
    pub qemu: PathBuf,
    /// The guest's kernel; `None`: the newest `/boot/vmlinuz-*` when a machine is made.
    pub kernel: Option<PathBuf>,
    /// The modules directory; `None`: derived from the kernel.
    pub modules: Option<PathBuf>,
    /// Busybox.
    pub busybox: PathBuf,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// CPUs.
    pub cpus: u32,
    /// Accelerator.
    pub accel: Accel,
    /// Registration deadline, seconds.
    pub register_timeout_secs: u64,
    /// Run time limit, seconds.
    pub run_timeout_secs: u64,
    /// The boss's OCapN listener.
    pub hob_listen: SocketAddr,
}

impl QemuSettings {
    /// The settings when the config says nothing.
    pub fn defaults(state_dir: &Path) -> QemuSettings {
        QemuSettings {
            state_dir: state_dir.to_path_buf(),
            qemu: PathBuf::from("qemu-system-x86_64"),
            kernel: None,
            modules: None,
            busybox: PathBuf::from(container::rootfs::DEFAULT_BUSYBOX),
            memory_mib: 512,
            cpus: 1,
            accel: Accel::Auto,
            register_timeout_secs: 90,
            run_timeout_secs: 3600,
            hob_listen: Place::Loopback.default_listen(),
        }
    }

    fn machine_dir(&self, machine: &str) -> PathBuf {
        self.state_dir.join(MACHINES_DIR).join(machine)
    }
}

/// A provider of qemu machines.
#[define_actor(on_restore = QemuProvider::after_restart)]
#[derive(Debug)]
pub struct QemuProvider {
    core: ProviderCore<RemoteMachine, QemuSettings>,
    /// Machines made or being made (their VMs may be running).
    made: BTreeSet<String>,
}

#[define_actor]
impl QemuProvider {
    /// Its machines that are up, sorted.
    pub fn machine_names(&self) -> Vec<String> {
        self.core.book.names()
    }
}

impl QemuProvider {
    fn after_restart(&mut self) {
        self.core.after_restart();
    }
}

impl Provider for QemuProvider {
    type Machine = RemoteMachine;
    /// The VM's anchor (`anchor_record`: its qemu's pid and start time).
    type Provisioned = String;
    type Config = QemuConfig;
    type Settings = QemuSettings;
    const KIND: &'static str = "qemu";
    const OLD_KINDS: &'static [&'static str] = &[];

    fn settings(config: QemuConfig, state_dir: &Path) -> Result<QemuSettings, String> {
        let d = QemuSettings::defaults(state_dir);
        let hob_listen = crate::hob_net::parse_listen(config.hob_listen, Place::Loopback)?;
        let memory_mib = match config.memory {
            None => d.memory_mib,
            Some(text) => container::parse_size(&text)? >> 20,
        };
        if memory_mib < 128 {
            return Err("memory must be at least 128MiB (the initramfs holds gobs-app)".into());
        }
        let cpus = config.cpus.unwrap_or(d.cpus);
        if !(1..=64).contains(&cpus) {
            return Err(format!("cpus must be 1 to 64, not {cpus}"));
        }
        Ok(QemuSettings {
            qemu: config.qemu.unwrap_or(d.qemu.clone()),
            kernel: config.kernel,
            modules: config.modules,
            busybox: config.busybox.unwrap_or(d.busybox.clone()),
            memory_mib,
            cpus,
            accel: config.accel.unwrap_or(d.accel),
            register_timeout_secs: config
                .register_timeout
                .map_or(d.register_timeout_secs, |t| t.0.as_secs().max(1)),
            run_timeout_secs: config
                .run_timeout
                .map_or(d.run_timeout_secs, |t| t.0.as_secs().max(1)),
            hob_listen,
            ..d
        })
    }

    fn create_provider(core: ProviderCore<RemoteMachine, QemuSettings>) -> Self {
        QemuProvider {
            core,
            made: BTreeSet::new(),
        }
    }

    fn core(&self) -> &ProviderCore<RemoteMachine, QemuSettings> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut ProviderCore<RemoteMachine, QemuSettings> {
        &mut self.core
    }

    fn gateway_given(&self) -> Option<Reconnect> {
        self.core.pass_gateway_on();
        // Its VMs are out there, waiting to attach again: listen for them.
        let gateway = self.core.gateway().ok()?;
        if self.made.is_empty() || !gateway.may_start() {
            return None;
        }
        let listen = Place::Loopback.fit(self.core.settings.hob_listen);
        Some(Box::new(move || gateway.start(listen).map(|_| ())))
    }

    fn provision(
        &mut self,
        machine: &str,
        progress: Progress,
    ) -> impl FnOnce() -> Result<String, ProviderError> + Send + 'static {
        self.made.insert(machine.to_string());
        let settings = self.core.settings.clone();
        let gateway = self.core.gateway();
        let machine = machine.to_string();
        move || {
            gateway
                .and_then(|g| vm::provision(&settings, &g, &machine, &progress))
                .map_err(ProviderError)
        }
    }

    fn boot(
        &mut self,
        machine: &str,
        anchor: String,
    ) -> impl FnOnce(Option<Ref<HobClientPresence>>) -> Ref<RemoteMachine> + Send + 'static {
        // Its qemu, by pid and start time.
        self.core.anchors.insert(machine.to_string(), anchor);
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
        self.made.remove(machine);
        let anchor = self.core.anchors.remove(machine);
        let settings = self.core.settings.clone();
        let gateway = self.core.gateway();
        let machine = machine.to_string();
        move || {
            gateway
                .and_then(|g| vm::teardown(&settings, &g, &machine, anchor, &progress))
                .map_err(ProviderError)
        }
    }
}

/// The newest `/boot/vmlinuz-*` (by version order of its release).
pub(crate) fn find_kernel() -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .map_err(|e| format!("cannot list /boot: {e}"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort_by_key(|p| version_key(&release_of(p)));
    found.pop().ok_or_else(|| {
        "no kernel in /boot (no /boot/vmlinuz-*): install Debian package linux-image-amd64 \
         (apt-get install --no-install-recommends linux-image-amd64), or set `kernel` in the \
         qemu provider's config"
            .to_string()
    })
}

/// `6.1.0-57-amd64` from `/boot/vmlinuz-6.1.0-57-amd64`.
fn release_of(kernel: &Path) -> String {
    kernel
        .file_name()
        .and_then(|f| f.to_str())
        .map(|f| f.trim_start_matches("vmlinuz-").to_string())
        .unwrap_or_default()
}

fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}


#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn settings(text: &str) -> Result<QemuSettings, String> {
        let config: QemuConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        QemuProvider::settings(config, Path::new("/state"))
    }

    #[test]
    fn settings_are_read_or_refused_saying_how_to_write_them() {
        assert_eq!(settings("").unwrap(), QemuSettings::defaults(Path::new("/state")));
        let s = settings("memory = \"1GiB\"\ncpus = 2\naccel = \"tcg\"\n").unwrap();
        assert_eq!((s.memory_mib, s.cpus, s.accel), (1024, 2, Accel::Tcg));
        assert!(settings("accel = \"fast\"\n").is_err());
        let err = settings("cpus = 0\n").unwrap_err();
        assert!(err.contains("1 to 64"), "{err}");
        let err = settings("memory = \"64MiB\"\n").unwrap_err();
        assert!(err.contains("at least 128MiB"), "{err}");
        let err = settings("hob_listen = \"x\"\n").unwrap_err();
        assert!(err.contains("IP:PORT"), "{err}");
    }

    #[test]
    fn kernels_sort_by_version() {
        let mut v = ["vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-57-amd64", "vmlinuz-5.10.0-1"]
            .map(PathBuf::from)
            .to_vec();
        v.sort_by_key(|p| version_key(&release_of(p)));
        assert_eq!(release_of(v.last().unwrap()), "6.1.0-57-amd64");
    }
}
