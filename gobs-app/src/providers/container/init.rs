//! `gobs-app container-init`: the first process of a `container` machine.
//!
//! The provider starts it with new mount, UTS, IPC, network and PID namespaces (see
//! the provider module); it is the container's **anchor**, the one process of the container
//! the host sees by its own pid. It reads its [`Spec`] (one line of JSON on stdin), then
//! waits for the provider's go (a byte after it: the provider has put it in its cgroup and
//! plugged its network), then forks the container's
//! PID 1, which dies with the anchor (parent-death signal), taking the whole PID namespace
//! with it: killing the anchor ends the container.
//!
//! PID 1 makes the root filesystem its own (private propagation, `/proc` of its PID
//! namespace, a `/dev` tmpfs with the usual devices, a `/tmp` tmpfs, the hob-client binary
//! and its libraries bind-mounted read-only), `pivot_root`s into it, sets the hostname to
//! the machine's name, and — where the host allows user namespaces — moves into a user
//! namespace of its own whose root is an unprivileged host uid (the anchor writes its id
//! maps). Then it supervises the hob-client: starts it, reaps every orphan, and starts it
//! again [`RESTART_DELAY`] after it exits.

use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rustix::mount::{MountFlags, MountPropagationFlags};
use serde::{Deserialize, Serialize};

use crate::hob_net::client::REGISTRATION_ENV;

/// How long PID 1 waits before starting the hob-client again after it exited.
pub const RESTART_DELAY: Duration = Duration::from_secs(3);

/// What the provider tells the container's init (one line of JSON on its stdin: it holds
/// the registration sturdyref, which no file on the host keeps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The machine's name: its hostname.
    pub name: String,
    /// The root filesystem on the host.
    pub root: PathBuf,
    /// Host files bind-mounted read-only at the same path inside (the hob-client's
    /// libraries).
    pub binds: Vec<PathBuf>,
    /// The gobs-app binary to bind-mount read-only at [`HOB_BINARY`]; `None` when the
    /// provider copied it there (its file was replaced since the daemon started).
    pub hob_source: Option<PathBuf>,
    /// The one-time registration sturdyref.
    pub registration: String,
    /// With a user namespace of its own for what runs inside: the ids it maps.
    pub ids: Option<IdMap>,
}

/// A user namespace's id map: root inside is `base` outside (in the namespace of the
/// container's init), and `count` ids from there are mapped (uids and gids alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMap {
    /// The outside id of root inside.
    pub base: u32,
    /// How many ids are mapped: [`ID_COUNT`] as root, 1 rootless (gobs-app's user only).
    pub count: u32,
}

/// Where the hob-client binary is inside a container.
pub const HOB_BINARY: &str = "/hob/gobs-app";

/// How many uids (and gids) a container's user namespace maps.
pub const ID_COUNT: u32 = 65536;

/// The longest spec the init reads.
const MAX_SPEC: usize = 1 << 20;

/// Runs the anchor of the machine whose directory is `dir` (see the module docs); returns
/// when the container ended.
pub fn run(dir: &Path) -> Result<(), String> {
    let text = read_line(&mut std::io::stdin().lock(), MAX_SPEC).map_err(|e| {
        format!("cannot read the spec of the container in {} from stdin: {e}", dir.display())
    })?;
    let spec: Spec = serde_json::from_slice(&text).map_err(|e| {
        format!("the spec of the container in {} is not usable: {e}", dir.display())
    })?;
    let mut go = [0u8; 1];
    std::io::stdin().read_exact(&mut go).map_err(|e| {
        format!("the provider went away before the container was set up ({e})")
    })?;
    // PID 1 asks (a byte down `ask`) for its user namespace's id maps; the anchor writes
    // them and answers down `done`.
    let (ask, done) = (pipe()?, pipe()?);
    // The host's /proc, opened now: PID 1's pivot_root changes the root of this (shared)
    // mount namespace, and with it what `/proc` names.
    let host_proc = rustix::fs::open(
        "/proc",
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("cannot open /proc: {e}"))?;
    // SAFETY: the anchor has one thread (nothing started any), so the child may run Rust.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: closing the ends this side does not use.
        unsafe {
            libc::close(ask[0]);
            libc::close(done[1]);
        }
        let code = match pid1(&spec, ask[1], done[0]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("container init (pid 1) of {}: {e}", spec.name);
                1
            }
        };
        // SAFETY: ending the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: closing the ends this side does not use (so a PID 1 that dies early ends
    // the read below).
    unsafe {
        libc::close(ask[1]);
        libc::close(done[0]);
    }
    if let Some(ids) = spec.ids {
        let mut byte = [0u8; 1];
        // SAFETY: reading one byte into our buffer from a pipe we made.
        let got = unsafe { libc::read(ask[0], byte.as_mut_ptr().cast(), 1) };
        if got == 1 {
            let map = format!("0 {} {}\n", ids.base, ids.count);
            let write = |file: &str, text: &str| -> std::io::Result<()> {
                let fd = rustix::fs::openat(
                    &host_proc,
                    format!("{pid}/{file}"),
                    rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?;
                std::io::Write::write_all(&mut std::fs::File::from(fd), text.as_bytes())
            };
            let written = write("uid_map", &map)
                .and_then(|()| write("setgroups", "deny"))
                .and_then(|()| write("gid_map", &map));
            let answer: &[u8] = if let Err(e) = &written {
                eprintln!("container init: cannot write the user namespace's id maps: {e}");
                b"x"
            } else {
                b"m"
            };
            // SAFETY: writing one byte from our buffer to a pipe we made.
            unsafe { libc::write(done[1], answer.as_ptr().cast(), 1) };
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    if waited < 0 {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!("the container's PID 1 ended (wait status {status})"))
    }
}

fn errno(what: &str, path: &Path) -> impl FnOnce(rustix::io::Errno) -> String {
    let path = path.display().to_string();
    let what = what.to_string();
    move |e| format!("cannot {what} {path}: {e}")
}

fn pipe() -> Result<[i32; 2], String> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe writes two descriptors into the array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    Ok(fds)
}

/// Moves PID 1 into a user namespace of its own, mapped by the anchor, and becomes its
/// root: `ids.base` outside, with no capability over the container's other namespaces
/// (they belong to the host's user namespace) nor over the host's files.
fn enter_user_namespace(ask: i32, done: i32) -> Result<(), String> {
    let last = || std::io::Error::last_os_error();
    // SAFETY: plain system calls on our own process; PID 1 has one thread.
    unsafe {
        // Rootless, the namespace we are in already denies setgroups (and we hold only
        // gobs-app's own groups): nothing to drop.
        if libc::setgroups(0, std::ptr::null()) != 0 && last().raw_os_error() != Some(libc::EPERM) {
            return Err(format!("setgroups: {}", last()));
        }
        if libc::unshare(libc::CLONE_NEWUSER) != 0 {
            return Err(format!("unshare(CLONE_NEWUSER): {}", last()));
        }
        if libc::write(ask, b"u".as_ptr().cast(), 1) != 1 {
            return Err(format!("cannot ask for the id maps: {}", last()));
        }
        let mut byte = [0u8; 1];
        if libc::read(done, byte.as_mut_ptr().cast(), 1) != 1 || byte[0] != b'm' {
            return Err("the anchor did not map the user namespace (see above)".into());
        }
        if libc::setresgid(0, 0, 0) != 0 {
            return Err(format!("setresgid: {}", last()));
        }
        if libc::setresuid(0, 0, 0) != 0 {
            return Err(format!("setresuid: {}", last()));
        }
    }
    Ok(())
}

fn pid1(spec: &Spec, ask: i32, done: i32) -> Result<(), String> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    // gobs-app's own umask (077) would make the mount points it creates unreachable for
    // root inside (an unprivileged uid outside); inside, the usual one.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let root = &spec.root;
    rustix::mount::mount_change(
        c"/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(errno("make private", Path::new("/")))?;
    rustix::mount::mount_bind_recursive(root, root).map_err(errno("bind", root))?;
    let quiet = MountFlags::NOSUID | MountFlags::NODEV;
    let proc_dir = root.join("proc");
    rustix::mount::mount("proc", &proc_dir, "proc", quiet | MountFlags::NOEXEC, None)
        .map_err(errno("mount /proc on", &proc_dir))?;
    let dev = root.join("dev");
    rustix::mount::mount(
        "tmpfs",
        &dev,
        "tmpfs",
        MountFlags::NOSUID,
        Some(c"mode=755,size=64k"),
    )
    .map_err(errno("mount a tmpfs on", &dev))?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(node);
        std::fs::write(&target, b"").map_err(|e| format!("cannot create {}: {e}", target.display()))?;
        let source = Path::new("/dev").join(node);
        rustix::mount::mount_bind(&source, &target).map_err(errno("bind", &source))?;
    }
    // A devpts of the container's own, for `run -t`: its terminals are not the host's.
    let pts = dev.join("pts");
    let devpts = std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&pts)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let options = c"newinstance,ptmxmode=0666,mode=0620";
            let flags = MountFlags::NOSUID | MountFlags::NOEXEC;
            rustix::mount::mount("devpts", &pts, "devpts", flags, Some(options))
                .map_err(|e| e.to_string())
        });
    match devpts {
        Ok(()) => {
            let _ = std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"));
        }
        Err(e) => eprintln!(
            "container init: no devpts at {} ({e}); run -t will not work in this machine",
            pts.display()
        ),
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(to, dev.join(link));
    }
    let tmp = root.join("tmp");
    rustix::mount::mount("tmpfs", &tmp, "tmpfs", quiet, Some(c"mode=1777"))
        .map_err(errno("mount a tmpfs on", &tmp))?;
    let sys = root.join("sys");
    if let Err(e) = rustix::mount::mount(
        "sysfs",
        &sys,
        "sysfs",
        quiet | MountFlags::NOEXEC | MountFlags::RDONLY,
        None,
    ) {
        eprintln!("container init: /sys not mounted ({e}); continuing without it");
    }
    for file in &spec.binds {
        let inside = root.join(file.strip_prefix("/").unwrap_or(file));
        if let Some(parent) = inside.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        if !inside.exists() {
            std::fs::write(&inside, b"")
                .map_err(|e| format!("cannot create {}: {e}", inside.display()))?;
        }
        rustix::mount::mount_bind(file, &inside).map_err(errno("bind", file))?;
        rustix::mount::mount_remount(&inside, MountFlags::BIND | MountFlags::RDONLY | quiet, "")
            .map_err(errno("make read-only", &inside))?;
    }
    if let Some(source) = &spec.hob_source {
        let inside = root.join(HOB_BINARY.trim_start_matches('/'));
        if !inside.exists() {
            std::fs::write(&inside, b"")
                .map_err(|e| format!("cannot create {}: {e}", inside.display()))?;
        }
        rustix::mount::mount_bind(source, &inside)
            .map_err(errno("bind the hob-client at", &inside))?;
        rustix::mount::mount_remount(&inside, MountFlags::BIND | MountFlags::RDONLY | quiet, "")
            .map_err(errno("make read-only", &inside))?;
    }
    let old = root.join(".oldroot");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&old)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| format!("cannot create {}: {e}", old.display()))?;
    rustix::process::pivot_root(root, &old).map_err(errno("pivot_root into", root))?;
    rustix::process::chdir("/").map_err(errno("chdir to", Path::new("/")))?;
    rustix::mount::unmount("/.oldroot", rustix::mount::UnmountFlags::DETACH)
        .map_err(errno("detach the host's root at", Path::new("/.oldroot")))?;
    let _ = std::fs::remove_dir("/.oldroot");
    // SAFETY: sethostname reads `len` bytes of the name we pass.
    let set = unsafe { libc::sethostname(spec.name.as_ptr().cast(), spec.name.len()) };
    if set != 0 {
        return Err(format!("sethostname: {}", std::io::Error::last_os_error()));
    }
    if spec.ids.is_some() {
        enter_user_namespace(ask, done)?;
    }
    supervise(spec)
}

/// One line from `input`, without its newline, byte by byte (what follows it is not
/// read), at most `limit` bytes.
fn read_line(input: &mut impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        input.read_exact(&mut byte)?;
        if byte[0] == b'\n' {
            return Ok(line);
        }
        if line.len() == limit {
            return Err(std::io::Error::other(format!("longer than {limit} bytes")));
        }
        line.push(byte[0]);
    }
}

/// Starts the hob-client, reaps everything, restarts the hob-client when it exits.
fn supervise(spec: &Spec) -> Result<(), String> {
    let start = || {
        Command::new(HOB_BINARY)
            .args(["hob-client", "--dir", "/hob/state"])
            .env_clear()
            .env("PATH", "/bin:/sbin:/usr/bin")
            .env("HOME", "/root")
            .env(REGISTRATION_ENV, &spec.registration)
            .current_dir("/root")
            .stdin(std::process::Stdio::null())
            .spawn()
            .map(|c| c.id() as i32)
    };
    let mut client = match start() {
        Ok(pid) => pid,
        Err(e) => return Err(format!("cannot start the hob-client: {e}")),
    };
    loop {
        let mut status = 0;
        // SAFETY: waiting for any child of ours (we are PID 1: orphans are ours too).
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // No children at all: start the client again.
            std::thread::sleep(RESTART_DELAY);
        } else if pid != client {
            continue;
        } else {
            eprintln!(
                "container init: the hob-client ended (wait status {status}); starting it again in {}",
                humantime::format_duration(RESTART_DELAY)
            );
            std::thread::sleep(RESTART_DELAY);
        }
        client = match start() {
            Ok(pid) => pid,
            Err(e) => {
                eprintln!("container init: cannot start the hob-client: {e}");
                continue;
            }
        };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_spec_line_is_read_and_the_go_after_it_is_left() {
        let mut input: &[u8] = b"{\"a\":1}\ng";
        assert_eq!(read_line(&mut input, 100).unwrap(), b"{\"a\":1}");
        assert_eq!(input, b"g", "the go byte is not read with the spec");
        let err = read_line(&mut &b"0123456789\n"[..], 4).unwrap_err();
        assert!(err.to_string().contains("longer than 4 bytes"), "{err}");
        let mut closed: &[u8] = b"{\"a\"";
        let err = read_line(&mut closed, 100).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
