//! Making and unmaking one container machine (the steps are in [`super`]'s docs): as root,
//! on the provider's bridge; otherwise rootless ([`rootless`]).

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cgroup::Cgroup;
use super::{
    ContainerSettings, KILL_LIMIT, SELF_EXE, Slot, Started, firewall, init, net, rootfs, rootless,
};
use crate::hob_net::Place;
use crate::hob_net::boss_gateway::BossGateway;
use crate::hob_net::gateway::Gateway;
use crate::progress::Progress;
use crate::providers::waiting_for_registration;
use crate::providers::anchor::{
    Unrecorded, alive, anchor_record, console_tail, kill_anchor, kill_recorded,
};

/// How containers are made here, by who runs gobs-app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As root: on the provider's bridge, with its firewall, a cgroup, and root inside
    /// mapped to a uid of its own.
    Root,
    /// As another user ([`rootless`]): pasta's forward to the boss, root inside mapped to
    /// that user.
    Rootless,
}

impl Mode {
    /// This process's mode.
    pub fn here() -> Mode {
        if rustix::process::geteuid().is_root() {
            Mode::Root
        } else {
            Mode::Rootless
        }
    }
}

/// Where the boss listens for this provider's machines, ready for them (with machines out
/// there after a restart, or before the first is made).
pub(super) fn bring_up(settings: &ContainerSettings, gateway: &BossGateway) -> Result<Gateway, String> {
    match Mode::here() {
        Mode::Root => net::bring_up_again(settings, gateway),
        Mode::Rootless => gateway.start(Place::Loopback.fit(settings.hob_listen)),
    }
}

/// The machine's directory.
fn machine_dir(settings: &ContainerSettings, machine: &str) -> PathBuf {
    settings.machines_dir().join(machine)
}

/// Whether containers can be made here, and how; the error names what is missing.
pub(crate) fn check_host(settings: &ContainerSettings) -> Result<Mode, String> {
    if !settings.busybox.is_file() {
        return Err(format!(
            "busybox is not at {}: install Debian package busybox-static (apt-get install \
             busybox-static), or set `busybox` in the provider's config",
            settings.busybox.display()
        ));
    }
    let mode = Mode::here();
    match mode {
        Mode::Root => {
            net::ip(&["-V"])?;
            if settings.isolated {
                firewall::check()?;
            }
        }
        Mode::Rootless => rootless::check()?,
    }
    Ok(mode)
}

pub(super) fn provision(
    settings: &ContainerSettings,
    gateway: &BossGateway,
    machine: &str,
    slot: &Slot,
    progress: &Progress,
) -> Result<Started, String> {
    let started = Instant::now();
    progress.step("checking the host and the boss's listener");
    let mode = check_host(settings)?;
    let gateway = match mode {
        Mode::Root => net::bring_up(settings, gateway)?,
        Mode::Rootless => gateway.start(Place::Loopback.fit(settings.hob_listen))?,
    };
    let dir = machine_dir(settings, machine);
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true).mode(0o700);
    dirs.create(settings.machines_dir())
        .map_err(|e| format!("cannot create {}: {e}", settings.machines_dir().display()))?;
    if dir.exists() {
        tracing::info!("removing leftover container directory {}", dir.display());
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot clear leftover {}: {e}; remove it by hand", dir.display()))?;
    }
    dirs.create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let root = dir.join("root");
    progress.step("building the container's root filesystem");
    rootfs::build(&root, &settings.busybox, machine)?;
    let ids = match mode {
        // Root inside is gobs-app's own user, in a user namespace nested in the one that
        // owns the container's other namespaces (see [`rootless`]).
        Mode::Rootless => Some(init::IdMap { base: 0, count: 1 }),
        Mode::Root if settings.user_namespace && user_namespaces_allowed() => {
            let base = uid_base_of(&slot.tag);
            rootfs::chown_all(&root, base)?;
            Some(init::IdMap {
                base,
                count: init::ID_COUNT,
            })
        }
        Mode::Root => {
            if settings.user_namespace {
                tracing::warn!(
                    machine,
                    "this host allows no user namespaces (/proc/sys/user/max_user_namespaces \
                     is 0): root inside the container is root outside"
                );
            }
            None
        }
    };
    // This binary, whatever became of its file since it started: bound from its path if
    // that is still this binary, else copied in.
    // (`ldd` is another process: it needs this one's pid, not `self`.)
    let exe = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    let mut binds = rootfs::shared_libs(&exe)?;
    binds.sort();
    let hob_source = own_binary();
    if hob_source.is_none() {
        let inside = root.join(init::HOB_BINARY.trim_start_matches('/'));
        std::fs::copy(SELF_EXE, &inside)
            .map_err(|e| format!("cannot copy the gobs-app binary to {}: {e}", inside.display()))?;
    }
    binds.dedup();
    let group = match mode {
        Mode::Root => {
            let group = Cgroup::plan(&slot.tag, settings.memory, settings.pids)?;
            group.create()?;
            Some(group)
        }
        Mode::Rootless => rootless::limits(machine, &slot.tag, settings.memory, settings.pids),
    };
    let gw_ip = settings.gateway_ip();
    // Where the machine dials the boss: the bridge's address, or (rootless) its own
    // loopback, which pasta forwards to the host's.
    let boss_ip = match mode {
        Mode::Root => gw_ip,
        Mode::Rootless => Ipv4Addr::LOCALHOST,
    };
    let registration = gateway.issue(machine, &boss_ip.to_string())?;
    let spec = init::Spec {
        name: machine.to_string(),
        root: root.clone(),
        binds,
        hob_source,
        registration: registration.to_uri(),
        ids,
    };
    let console = dir.join("console.log");
    progress.step(match mode {
        Mode::Root => "starting the container's init in new namespaces",
        Mode::Rootless => "starting the container's init in new namespaces (rootless)",
    });
    let (pid, mut go) = launch(&dir, &spec, &console, mode)?;
    let anchor = Unrecorded::new(anchor_record(pid), KILL_LIMIT);
    if let Some(group) = &group {
        group.add(pid)?;
    }
    let [a, b, c] = settings.subnet;
    let address = match mode {
        Mode::Root => Ipv4Addr::new(a, b, c, slot.octet),
        Mode::Rootless => Ipv4Addr::LOCALHOST,
    };
    progress.step(match mode {
        Mode::Root => "plugging the container into the provider's bridge",
        Mode::Rootless => "forwarding the boss's port into the container (pasta)",
    });
    let pasta = match mode {
        Mode::Root => {
            net::plug(
                pid,
                &settings.bridge,
                &host_veth(&slot.tag),
                &format!("gc{}", slot.tag),
                address,
                gw_ip,
                settings.isolated,
            )?;
            None
        }
        Mode::Rootless => Some(rootless::connect(pid, gateway.port(), &dir)?),
    };
    go.write_all(b"g")
        .map_err(|e| format!("cannot start the container: {e}{}", console_tail(&console)))?;
    drop(go);
    let limit = Duration::from_secs(settings.register_timeout_secs);
    waiting_for_registration(progress, "the container's", limit);
    gateway
        .wait_up(machine, limit, || {
            (!alive(pid)).then(|| {
                format!(
                    "machine {machine:?}'s container stopped before it registered{}",
                    console_tail(&console)
                )
            })
        })
        .map_err(|e| {
            let tail = console_tail(&console);
            if e.contains(&tail) { e } else { format!("{e}{tail}") }
        })?;
    tracing::info!(
        machine,
        %address,
        elapsed = ?started.elapsed(),
        "container machine registered"
    );
    Ok(Started {
        anchor: anchor.recorded(),
        pasta: pasta.map(|p| p.recorded()),
    })
}

/// The path of this process's binary, if that path still holds it (the same inode).
fn own_binary() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::read_link(SELF_EXE).ok()?;
    let (now, running) = (std::fs::metadata(&path).ok()?, std::fs::metadata(SELF_EXE).ok()?);
    (now.ino() == running.ino() && now.dev() == running.dev()).then_some(path)
}

/// Whether the host lets processes make user namespaces.
fn user_namespaces_allowed() -> bool {
    std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// The first host uid of the container tagged `tag`: one of 16384 blocks of 65536 ids
/// from 2^30 up, picked by the tag (random for every creation).
pub fn uid_base_of(tag: &str) -> u32 {
    let block = u32::from_str_radix(tag, 16).unwrap_or(0) % 16384;
    (1 << 30) + block * init::ID_COUNT
}

fn host_veth(tag: &str) -> String {
    format!("gh{tag}")
}

/// Starts `container-init` for the machine in `dir` in new namespaces, its spec down its
/// stdin; answers its pid and the pipe its go goes down.
fn launch(
    dir: &Path,
    spec: &init::Spec,
    console: &Path,
    mode: Mode,
) -> Result<(i32, std::process::ChildStdin), String> {
    let mut line =
        serde_json::to_vec(spec).map_err(|e| format!("cannot encode the spec: {e}"))?;
    line.push(b'\n');
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(console)
        .map_err(|e| format!("cannot open {}: {e}", console.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", console.display()))?;
    // By /proc/self/exe: a daemon whose binary was replaced (an upgrade, a rebuild) still
    // starts its own build.
    let mut cmd = Command::new(SELF_EXE);
    cmd.arg("container-init")
        .arg("--dir")
        .arg(dir)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log2);
    crate::child_fds::exclude(&mut cmd);
    match mode {
        Mode::Rootless => rootless::unshare_on_start(&mut cmd),
        // SAFETY: the closure makes system calls only (setsid, unshare), between fork and
        // exec.
        Mode::Root => unsafe {
            cmd.pre_exec(|| {
                // Its own session: the container outlives the daemon that made it.
                rustix::process::setsid()?;
                use rustix::thread::UnshareFlags as F;
                rustix::thread::unshare_unsafe(
                    F::NEWNS | F::NEWUTS | F::NEWIPC | F::NEWNET | F::NEWPID,
                )?;
                Ok(())
            });
        },
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| match mode {
            Mode::Root => format!("cannot start the container's init: {e}"),
            // The sysctls allowed it, yet something else (a seccomp filter, a security
            // module) refused.
            Mode::Rootless => format!(
                "cannot start the container's init in namespaces of its own: {e}; this host \
                 does not let gobs-app's user make a user namespace with mount, network and \
                 PID namespaces (try `unshare --user --map-root-user --mount --net --pid \
                 --fork true`), so run gobs-app as root or use another provider"
            ),
        })?;
    let mut go = child
        .stdin
        .take()
        .ok_or_else(|| "the container's init has no stdin (a bug)".to_string())?;
    let pid = child.id() as i32;
    // The child is reaped by teardown (waitpid), or by init after a daemon restart.
    drop(child);
    // Ends the init at once if it fails: it reads its spec before anything else.
    go.write_all(&line).map_err(|e| {
        format!("cannot hand the container's init its spec: {e}{}", console_tail(console))
    })?;
    Ok((pid, go))
}

pub(super) fn teardown(
    settings: &ContainerSettings,
    gateway: &BossGateway,
    machine: &str,
    slot: Option<Slot>,
    last: bool,
    progress: &Progress,
) -> Result<(), String> {
    let dir = machine_dir(settings, machine);
    gateway.revoke(machine)?;
    progress.step("stopping the container");
    // Earlier releases recorded the anchor and the tag in files only.
    match slot.as_ref().and_then(|s| s.anchor.as_deref()) {
        Some(anchor) => kill_recorded(anchor, KILL_LIMIT)?,
        None => kill_anchor(&dir, KILL_LIMIT)?,
    }
    let pasta = slot.as_ref().and_then(|s| s.pasta.as_deref());
    rootless::disconnect(pasta, &dir, KILL_LIMIT)?;
    let tag = slot
        .map(|s| s.tag)
        .or_else(|| std::fs::read_to_string(dir.join("tag")).ok())
        .map(|t| t.trim().to_string());
    if let Some(tag) = &tag {
        progress.step("removing the container's cgroup and network link");
        if let Ok(group) = Cgroup::plan(tag, settings.memory, settings.pids) {
            group.remove(KILL_LIMIT)?;
        }
        net::remove_link(&host_veth(tag))?;
    }
    // Rootless, the boss's listener is on loopback, which other providers may share: it
    // stays, as qemu's does.
    if last && Mode::here() == Mode::Root {
        net::take_down(settings, gateway)?;
    }
    progress.step("removing the container's directory");
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", dir.display())),
    }
}

