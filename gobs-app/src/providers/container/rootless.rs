//! Rootless containers: what the provider does differently when gobs-app is not root.
//!
//! - **Namespaces**: the container's init starts in a user namespace of its own whose root
//!   is gobs-app's own user (one id mapped, written by the child itself, as `unshare -r`
//!   does), and in mount, UTS, IPC, network and PID namespaces owned by it. Its PID 1 then
//!   moves the hob-client into a second user namespace (root mapped to that root), so root
//!   inside has no capability over the container's network, mount or UTS namespaces, as in
//!   a root-made container.
//! - **Network**: no bridge, no veth, no firewall (they need root). The container's network
//!   namespace has loopback and an unconfigured interface of `pasta` (Debian package
//!   `passt`), which forwards one port of the container's loopback, the boss listener's, to
//!   the same port on the host's loopback, where the boss listens: that listener is the one
//!   place a rootless container reaches. The interface stays down and unaddressed (only the
//!   namespace's owner could configure it, and root inside does not own it), so nothing
//!   else goes out, and nothing of the host comes in.
//! - **Limits**: a cgroup only where the host lets gobs-app's user make one; elsewhere the
//!   machine runs without memory and process limits, with a warning.
//!
//! `pasta` runs as a process of its own (it outlives a restarted daemon, as the container
//! does), recorded (pid and start time) in the provider's record of the machine, beside
//! the container's anchor, and killed at teardown. It tells its pid through a file in the
//! machine directory, `pasta.pid`, removed once read; a pasta no record names (a daemon
//! ended while creating the machine) is found by that file's path on its command line.
//! Machines of earlier releases kept the record in that file.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::KILL_LIMIT;
use super::cgroup::Cgroup;
use crate::providers::anchor::{Unrecorded, anchor_record, kill_recorded, kill_unrecorded};

/// The user-mode network program, and the Debian package it comes in.
pub const PASTA: &str = "pasta";
/// The Debian package [`PASTA`] comes in.
pub const PASTA_PACKAGE: &str = "passt";
/// The file in the machine directory pasta writes its pid to (`-P`).
const PASTA_RECORD: &str = "pasta.pid";

/// Whether the host lets an unprivileged process make user namespaces; the error says which
/// setting forbids it and how to change it.
pub fn user_namespaces() -> Result<(), String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("/proc/sys/user/max_user_namespaces").is_some_and(|n| n == "0") {
        return Err(
            "this host allows no user namespaces (/proc/sys/user/max_user_namespaces is 0); \
             raise it (sysctl user.max_user_namespaces=15000) or run gobs-app as root"
                .into(),
        );
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").is_some_and(|n| n == "0") {
        return Err(
            "this host allows user namespaces to root only \
             (/proc/sys/kernel/unprivileged_userns_clone is 0); set it to 1 (sysctl \
             kernel.unprivileged_userns_clone=1) or run gobs-app as root"
                .into(),
        );
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_some_and(|n| n == "1") {
        return Err(
            "AppArmor keeps unprivileged users from making user namespaces \
             (/proc/sys/kernel/apparmor_restrict_unprivileged_userns is 1); set it to 0 or \
             run gobs-app as root"
                .into(),
        );
    }
    Ok(())
}

/// Whether a rootless container can be made here: user namespaces and `pasta`.
pub fn check() -> Result<(), String> {
    user_namespaces()?;
    let out = Command::new(PASTA)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "cannot run `{PASTA}`, which gives rootless containers their one way to the \
                 boss (install Debian package {PASTA_PACKAGE}: apt-get install \
                 {PASTA_PACKAGE}), or run gobs-app as root: {e}"
            )
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{PASTA} --version` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Makes `cmd` start in a user namespace of its own, its root being this process's uid
/// and gid, and in new mount, UTS, IPC, network and PID namespaces owned by it.
pub fn unshare_on_start(cmd: &mut Command) {
    let uid_map = format!("0 {} 1\n", rustix::process::geteuid().as_raw());
    let gid_map = format!("0 {} 1\n", rustix::process::getegid().as_raw());
    // SAFETY: the closure makes system calls only (setsid, unshare, open, write) on memory
    // prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            use rustix::thread::UnshareFlags as F;
            // Its own session: the container outlives the daemon that made it.
            rustix::process::setsid()?;
            rustix::thread::unshare_unsafe(F::NEWUSER)?;
            write_own(c"/proc/self/setgroups", b"deny")?;
            write_own(c"/proc/self/uid_map", uid_map.as_bytes())?;
            write_own(c"/proc/self/gid_map", gid_map.as_bytes())?;
            rustix::thread::unshare_unsafe(F::NEWNS | F::NEWUTS | F::NEWIPC | F::NEWNET | F::NEWPID)?;
            Ok(())
        });
    }
}

/// Writes `bytes` to `/proc/self` file `path` (no allocation: between fork and exec).
fn write_own(path: &std::ffi::CStr, bytes: &[u8]) -> std::io::Result<()> {
    let fd = rustix::fs::open(path, rustix::fs::OFlags::WRONLY, rustix::fs::Mode::empty())?;
    rustix::io::write(&fd, bytes)?;
    Ok(())
}

/// Gives the container of process `pid` its one way out: `pasta` forwarding port `port` of
/// its loopback to the boss's listener on the host's loopback, and nothing else. Answers
/// pasta, killed unless recorded.
pub(crate) fn connect(pid: i32, port: u16, dir: &Path) -> Result<Unrecorded, String> {
    let record = dir.join(PASTA_RECORD);
    let port = port.to_string();
    let mut cmd = Command::new(PASTA);
    cmd.args(["--quiet", "-T", &port])
        .args(["-t", "none", "-u", "none", "-U", "none"])
        .args(["--no-udp", "--no-icmp", "--no-dhcp", "--no-ndp", "--no-dhcpv6", "--no-ra"])
        .arg("-P")
        .arg(&record)
        .arg(pid.to_string())
        .stdin(Stdio::null());
    crate::child_fds::exclude(&mut cmd);
    let out = cmd.output().map_err(|e| {
        format!("cannot run `{PASTA}` (install Debian package {PASTA_PACKAGE}): {e}")
    })?;
    if !out.status.success() {
        return Err(format!(
            "`{PASTA}` could not connect the container to the boss ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // pasta wrote its pid; recorded with its start time, so teardown never kills a later
    // process that reused it.
    let written = std::fs::read_to_string(&record)
        .map_err(|e| format!("cannot read {}: {e}", record.display()))?;
    let pasta: i32 = written
        .trim()
        .parse()
        .map_err(|_| format!("{} holds no pid: {written:?}", record.display()))?;
    let recorded = Unrecorded::new(anchor_record(pasta), KILL_LIMIT);
    std::fs::remove_file(&record)
        .map_err(|e| format!("cannot remove {}: {e}", record.display()))?;
    Ok(recorded)
}

/// Ends the container's `pasta`: the one `recorded` names (an earlier release's
/// `pasta.pid` without one), then, as a backstop, any started for `dir`.
pub fn disconnect(recorded: Option<&str>, dir: &Path, limit: Duration) -> Result<(), String> {
    let file = dir.join(PASTA_RECORD);
    let earlier = || std::fs::read_to_string(&file).ok();
    if let Some(record) = recorded.map(str::to_owned).or_else(earlier) {
        kill_recorded(&record, limit).map_err(|e| format!("{e} (the container's {PASTA})"))?;
    }
    kill_unrecorded("-P", &file, limit).map_err(|e| format!("{e} (the container's {PASTA})"))
}

/// The container's cgroup, where the host lets this user make one; `None` (with a warning
/// naming why) where it does not.
pub fn limits(machine: &str, tag: &str, memory: u64, pids: u64) -> Option<Cgroup> {
    let made = Cgroup::plan(tag, memory, pids).and_then(|g| g.create().map(|()| g));
    match made {
        Ok(group) => Some(group),
        Err(e) => {
            tracing::warn!(
                machine,
                "no memory or process limits for this rootless container: the host delegates \
                 no cgroup to gobs-app's user ({e})"
            );
            None
        }
    }
}
