//! Making and unmaking one qemu VM (the steps are in [`super`]'s docs): find qemu, write
//! the machine's initramfs, boot it (probing KVM once), wait for its registration; and
//! teardown.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::{Accel, KVM_PROBE, MACHINES_DIR, QemuSettings, find_kernel, initramfs, net, release_of};
use crate::hob_net::boss_gateway::BossGateway;
use crate::progress::Progress;
use crate::providers::anchor::{
    Unrecorded, alive, anchor_record, console_tail, kill_anchor, kill_recorded, kill_unrecorded,
};
use crate::providers::container::{self, KILL_LIMIT};
use crate::providers::waiting_for_registration;

/// The machine's initramfs, in its directory (qemu's `-initrd`, by which teardown finds a
/// VM no record names).
const INITRD: &str = "initramfs.cpio";

/// Whether KVM worked in this process: 0 untried, 1 works, 2 hangs or fails.
static KVM: AtomicU8 = AtomicU8::new(0);

fn find_on_path(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

pub(super) fn provision(
    settings: &QemuSettings,
    gateway: &BossGateway,
    machine: &str,
    progress: &Progress,
) -> Result<String, String> {
    let started = Instant::now();
    progress.step("finding qemu, the kernel and busybox");
    let qemu = find_on_path(&settings.qemu).ok_or_else(|| {
        format!(
            "{} is not installed: install Debian package qemu-system-x86 (apt-get install \
             --no-install-recommends qemu-system-x86), or set `qemu` in the provider's config",
            settings.qemu.display()
        )
    })?;
    let kernel = match &settings.kernel {
        Some(k) => k.clone(),
        None => find_kernel()?,
    };
    if !kernel.is_file() {
        return Err(format!("the kernel {} is not a file", kernel.display()));
    }
    let release = release_of(&kernel);
    let modules = settings
        .modules
        .clone()
        .unwrap_or_else(|| Path::new("/lib/modules").join(&release));
    if !settings.busybox.is_file() {
        return Err(format!(
            "busybox is not at {}: install Debian package busybox-static, or set `busybox` in \
             the provider's config",
            settings.busybox.display()
        ));
    }
    let gateway = gateway.start(settings.hob_listen)?;
    let dir = settings.machine_dir(machine);
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true).mode(0o700);
    if dir.exists() {
        stop_leftover(&dir, None)?;
        std::fs::remove_dir_all(&dir).map_err(|e| {
            format!("cannot clear leftover {}: {e}; remove it by hand", dir.display())
        })?;
    }
    dirs.create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    progress.step("writing the machine's initramfs");
    let exe = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    let libs = container::rootfs::shared_libs(&exe)?;
    let registration = gateway.issue(machine, net::BOSS_FROM_GUEST)?.to_uri();
    let boss = SocketAddr::new(settings.hob_listen.ip(), gateway.port());
    let hob_binary = stripped_copy(&exe, &dir);
    let initrd = dir.join(INITRD);
    initramfs::write(
        &initrd,
        &initramfs::Contents {
            hostname: machine,
            busybox: &settings.busybox,
            modules: &modules,
            hob_binary: &hob_binary,
            libs: &libs,
            registration: &registration,
        },
    )?;
    if hob_binary != exe {
        let _ = std::fs::remove_file(&hob_binary);
    }
    // The kernel unpacks the archive into a tmpfs of half the guest's memory, while the
    // archive itself is still in memory.
    let size_mib = std::fs::metadata(&initrd).map(|m| m.len() >> 20).unwrap_or(0);
    if size_mib + 64 > settings.memory_mib / 2 {
        return Err(format!(
            "machine {machine:?}'s initramfs is {size_mib} MiB, too large for a VM of {} MiB \
             (the guest unpacks it into half its memory): set `memory` in the qemu provider's \
             config to at least {} MiB",
            settings.memory_mib,
            (size_mib + 64) * 2
        ));
    }
    let console = dir.join("console.log");
    // Killed unless the provider's record takes it (when this answers).
    let boot = |accel: Accel| -> Result<(i32, Unrecorded), String> {
        progress.step(match accel {
            Accel::Kvm => "booting the VM with KVM",
            _ => "booting the VM with TCG (emulation: slower)",
        });
        let _ = std::fs::remove_file(&console);
        let pid = launch(&qemu, settings, boss, &kernel, &initrd, &console, accel)?;
        Ok((pid, Unrecorded::new(anchor_record(pid), KILL_LIMIT)))
    };
    let use_kvm = match settings.accel {
        Accel::Tcg => false,
        Accel::Kvm => true,
        Accel::Auto => KVM.load(Ordering::SeqCst) != 2 && Path::new("/dev/kvm").exists(),
    };
    let (mut pid, mut anchor) = boot(if use_kvm { Accel::Kvm } else { Accel::Tcg })?;
    if use_kvm && settings.accel == Accel::Auto && KVM.load(Ordering::SeqCst) == 0 {
        let deadline = Instant::now() + KVM_PROBE;
        let failed = loop {
            let text = std::fs::read_to_string(&console).unwrap_or_default();
            if text.contains(initramfs::INIT_MARK) {
                break None;
            }
            if !alive(pid) {
                let said = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
                break Some(format!("qemu with KVM exited at once ({})", said.trim()));
            }
            if Instant::now() >= deadline {
                break Some(format!(
                    "a KVM guest did not reach its init within {}",
                    humantime::format_duration(KVM_PROBE)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some(why) = failed {
            KVM.store(2, Ordering::SeqCst);
            tracing::warn!(
                machine,
                "{why}; booting with TCG (emulation, much slower) from now on; set accel = \
                 \"tcg\" in the qemu provider's config to skip this probe"
            );
            kill_recorded(&anchor.recorded(), KILL_LIMIT)?;
            (pid, anchor) = boot(Accel::Tcg)?;
        } else {
            KVM.store(1, Ordering::SeqCst);
        }
    } else if !use_kvm && settings.accel == Accel::Auto {
        tracing::warn!(machine, "booting with TCG (emulation): KVM is not usable here");
    }
    let limit = Duration::from_secs(settings.register_timeout_secs);
    waiting_for_registration(progress, "the guest's", limit);
    gateway
        .wait_up(machine, limit, || {
            (!alive(pid)).then(|| {
                let said = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
                format!(
                    "machine {machine:?}'s qemu exited before the guest registered (qemu said: \
                     {:?}){}",
                    said.trim(),
                    console_tail(&console)
                )
            })
        })
        .map_err(|e| {
            let tail = console_tail(&console);
            if e.contains(&tail) { e } else { format!("{e}{tail}") }
        })?;
    tracing::info!(machine, kernel = release, elapsed = ?started.elapsed(), "qemu machine registered");
    Ok(anchor.recorded())
}

/// Ends machine `dir`'s VM: the one `anchor` names, or an earlier release's `anchor.pid`;
/// then, as a backstop, any qemu started with the machine's initramfs (a creation whose
/// daemon ended before it recorded its anchor).
fn stop_leftover(dir: &Path, anchor: Option<String>) -> Result<(), String> {
    match anchor {
        Some(anchor) => kill_recorded(&anchor, KILL_LIMIT)?,
        None => kill_anchor(dir, KILL_LIMIT)?,
    }
    kill_unrecorded("-initrd", &dir.join(INITRD), KILL_LIMIT)
}

/// A copy of `exe` without its debug sections in `dir`, when `strip` (Debian package
/// binutils) is there; `exe` itself otherwise. A debug build is 150 MiB, 38 MiB stripped:
/// the guest holds the archive and its unpacked files in memory at once.
pub(crate) fn stripped_copy(exe: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("gobs-app.stripped");
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(exe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if stripped {
        out
    } else {
        tracing::debug!("no `strip` (binutils): the guest gets the hob-client unstripped");
        exe.to_path_buf()
    }
}

/// Starts qemu; answers its pid.
fn launch(
    qemu: &Path,
    settings: &QemuSettings,
    boss: SocketAddr,
    kernel: &Path,
    initrd: &Path,
    console: &Path,
    accel: Accel,
) -> Result<i32, String> {
    let accel = match accel {
        Accel::Kvm => "kvm",
        _ => "tcg",
    };
    // qemu's own complaints (no KVM, a bad option) go next to the console log.
    let log = console.with_file_name("qemu.log");
    let stderr = std::fs::File::create(&log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut cmd = Command::new(qemu);
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
        .args(["-machine", &format!("q35,accel={accel}")])
        .args(["-m", &settings.memory_mib.to_string()])
        .args(["-smp", &settings.cpus.to_string()])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        // no_timer_check: an emulated guest on a busy host fails the kernel's IO-APIC timer
        // check and panics at boot ("IO-APIC + timer doesn't work").
        .args(["-append", "console=ttyS0 quiet panic=-1 no_timer_check rdinit=/init"])
        .args(net::args(&settings.busybox, boss))
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .args(["-monitor", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if accel == "tcg" {
        cmd.args(["-cpu", "max"]);
    } else {
        cmd.args(["-cpu", "host"]);
    }
    crate::child_fds::in_own_session(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
    let pid = child.id() as i32;
    // Reaped by teardown (kill_recorded), or by init after a daemon restart.
    drop(child);
    Ok(pid)
}

pub(super) fn teardown(
    settings: &QemuSettings,
    gateway: &BossGateway,
    machine: &str,
    anchor: Option<String>,
    progress: &Progress,
) -> Result<(), String> {
    let dir = settings.machine_dir(machine);
    gateway.revoke(machine)?;
    progress.step("stopping the VM");
    stop_leftover(&dir, anchor)?;
    progress.step("removing the machine's directory");
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {}: {e}", dir.display())),
    }
    // The last machine takes the (then empty) directory of machines with it.
    let _ = std::fs::remove_dir(settings.state_dir.join(MACHINES_DIR));
    Ok(())
}
