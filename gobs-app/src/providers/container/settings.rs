//! A container provider's settings: the keys of its config table, their defaults (the
//! bridge's name and subnet derived from the state directory) and their checks.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::rootfs;
use crate::config::human::HumanDuration;
use crate::hob_net::{Place, parse_listen};

/// Directory of the container machines, inside the state directory.
pub const MACHINES_DIR: &str = "containers";

/// The keys of a container provider's `[providers.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerConfig {
    /// Where busybox is (default `/bin/busybox`, from Debian's busybox-static).
    pub busybox: Option<PathBuf>,
    /// Memory limit of each machine (`"256MiB"`, `"1GiB"`, or bytes).
    pub memory: Option<String>,
    /// Process limit of each machine.
    pub pids: Option<u64>,
    /// A machine must register within this long.
    pub register_timeout: Option<HumanDuration>,
    /// A command is killed after this long.
    pub run_timeout: Option<HumanDuration>,
    /// The boss's OCapN listener, `IP:PORT` with IP the bridge's address (port 0 picks
    /// one once).
    pub hob_listen: Option<String>,
    /// The bridge's subnet, `A.B.C.0/24`.
    pub subnet: Option<String>,
    /// The bridge's name (at most 15 characters).
    pub bridge: Option<String>,
    /// Give each machine a user namespace, root inside being an unprivileged uid outside
    /// (default true; where the host allows none, machines go without, with a warning).
    pub user_namespace: Option<bool>,
    /// Machines reach only the boss's listener (default true); false lets them reach each
    /// other and the host's services.
    pub isolated: Option<bool>,
}

/// How a container provider works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSettings {
    /// The state directory.
    pub state_dir: PathBuf,
    /// Busybox on the host.
    pub busybox: PathBuf,
    /// Memory limit, bytes.
    pub memory: u64,
    /// Process limit.
    pub pids: u64,
    /// Registration deadline, seconds.
    pub register_timeout_secs: u64,
    /// Run time limit, seconds.
    pub run_timeout_secs: u64,
    /// The boss's OCapN listener.
    pub hob_listen: SocketAddr,
    /// The bridge's subnet: its first three octets.
    pub subnet: [u8; 3],
    /// The bridge's name.
    pub bridge: String,
    /// Whether machines get a user namespace.
    pub user_namespace: bool,
    /// Whether machines reach only the boss's listener ([`firewall`](super::firewall)).
    #[serde(default = "isolated_by_default")]
    pub isolated: bool,
}

fn isolated_by_default() -> bool {
    true
}

impl ContainerSettings {
    /// The settings for state directory `state_dir` when the config says nothing: the
    /// bridge's name and subnet are derived from the state directory, so two state
    /// directories on one host get different ones.
    pub fn defaults(state_dir: &Path) -> ContainerSettings {
        let h = fnv(state_dir.as_os_str().as_encoded_bytes());
        let subnet = [10, 100 + (h % 100) as u8, ((h >> 8) % 256) as u8];
        ContainerSettings {
            state_dir: state_dir.to_path_buf(),
            busybox: PathBuf::from(rootfs::DEFAULT_BUSYBOX),
            memory: 256 << 20,
            pids: 512,
            register_timeout_secs: 30,
            run_timeout_secs: 3600,
            hob_listen: Place::Bridge(bridge_ip(subnet)).default_listen(),
            subnet,
            bridge: format!("gobs{:06x}", (h >> 16) & 0xff_ffff),
            user_namespace: true,
            isolated: true,
        }
    }

    /// The settings a `[providers.NAME]` table says, over [`ContainerSettings::defaults`];
    /// the error names the key that is wrong and why.
    pub fn from_config(config: ContainerConfig, state_dir: &Path) -> Result<ContainerSettings, String> {
    let d = ContainerSettings::defaults(state_dir);
    let subnet = match config.subnet {
        None => d.subnet,
        Some(text) => parse_subnet(&text)?,
    };
    let hob_listen = parse_listen(config.hob_listen, Place::Bridge(bridge_ip(subnet)))?;
    let bridge = config.bridge.unwrap_or(d.bridge.clone());
    if bridge.is_empty()
        || bridge.len() > 15
        || !bridge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "bridge {bridge:?} is not an interface name (1 to 15 letters, digits, '-', '_')"
        ));
    }
    let pids = config.pids.unwrap_or(d.pids);
    if pids < 8 {
        return Err("pids must be at least 8 (the init and the hob-client need some)".into());
    }
    let memory = match config.memory {
        None => d.memory,
        Some(text) => parse_size(&text)?,
    };
    if memory < 16 << 20 {
        return Err("memory must be at least 16MiB".into());
    }
    Ok(ContainerSettings {
        busybox: config.busybox.unwrap_or(d.busybox.clone()),
        memory,
        pids,
        register_timeout_secs: config
            .register_timeout
            .map_or(d.register_timeout_secs, |t| t.0.as_secs().max(1)),
        run_timeout_secs: config
            .run_timeout
            .map_or(d.run_timeout_secs, |t| t.0.as_secs().max(1)),
        hob_listen,
        subnet,
        bridge,
        user_namespace: config.user_namespace.unwrap_or(d.user_namespace),
        isolated: config.isolated.unwrap_or(d.isolated),
        ..d
    })
    }

    pub(super) fn gateway_ip(&self) -> Ipv4Addr {
        bridge_ip(self.subnet)
    }

    pub(super) fn machines_dir(&self) -> PathBuf {
        self.state_dir.join(MACHINES_DIR)
    }
}

/// The host's address on the bridge of subnet `A.B.C.0/24`: `A.B.C.1`.
fn bridge_ip([a, b, c]: [u8; 3]) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, 1)
}

/// A stable hash (FNV-1a, then splitmix64's finalizer so that every bit depends on every
/// byte): the same state directory gives the same names on every start and build.
fn fnv(bytes: &[u8]) -> u64 {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("memory {text:?} is not a size; write it like \"256MiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "memory unit {other:?} is not one of B, KiB, MiB, GiB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("memory {text:?} is too large"))
}

fn parse_subnet(text: &str) -> Result<[u8; 3], String> {
    let bad = || format!("subnet {text:?} is not A.B.C.0/24");
    let (addr, len) = text.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let [a, b, c, d] = addr.octets();
    if len != "24" || d != 0 {
        return Err(bad());
    }
    Ok([a, b, c])
}
