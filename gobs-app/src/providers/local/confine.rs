//! How a `local` machine's commands are confined: a [`Jail`] turns a `Command` into one
//! that, between `fork` and `exec`,
//!
//! 1. enters a **new mount namespace** (its mounts are private: nothing propagates back);
//! 2. mounts an empty tmpfs over the **state directory** (which holds the stores, the
//!    config, the lock and the daemon's socket) and over the directory of **all machines**,
//!    both read-only, and a private, writable tmpfs over `/tmp`, `/var/tmp` and `/dev/shm`;
//! 3. bind-mounts **its own machine directory** back at its usual path, and works there;
//! 4. drops to the machine's **own unprivileged uid and gid** (no supplementary groups),
//!    with `no_new_privs`, so a set-uid program cannot give privileges back, and so it can
//!    neither undo the mounts nor reach other processes' views through `/proc/PID/root`;
//! 5. runs with a **clean environment** (`HOME`, `PATH`, `USER`, `LOGNAME`, `LANG`,
//!    `GOBS_MACHINE` only, and `TERM` in a terminal) and in a **process group of its own**
//!    (its runner makes it, or a session of its own in a terminal), and is killed if the
//!    gobs-app thread waiting for it ends (the parent-death signal).
//!
//! What this guarantees, with gobs-app running as root: the command cannot open the state
//! directory, the daemon's socket (so it cannot drive the daemon), another machine's
//! directory, or the daemon's environment; files it writes land in its machine directory or
//! in a private tmpfs; and every process it starts, even one that leaves the process group
//! (`setsid`, double fork), keeps the machine's uid, so [`kill_all`] ends them all on
//! `destroy-machine`.
//!
//! What it does not: the rest of the host's file system stays visible (read-only to the
//! machine's uid wherever ordinary permissions say so, and writable wherever they let any
//! user write); the network is the host's; there are no CPU, memory or process limits
//! (no cgroup); processes are visible in `/proc`.
//!
//! A host that does not allow this (gobs-app not running as root, or a kernel refusing
//! namespaces) gets a clear error from [`check_host`] or from the spawn; a command is never
//! run unconfined.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::fs::Mode;
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::process::{Gid, Uid};

/// `PATH` inside a machine.
pub const MACHINE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Directories every machine gets a private, empty, writable tmpfs over (if they exist).
pub const PRIVATE_TMP: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

/// Where a machine's commands run and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jail {
    /// The machine's name (for `USER` and messages).
    pub machine: String,
    /// Its directory: working directory and `HOME`.
    pub dir: PathBuf,
    /// Its uid and gid.
    pub uid: u32,
    /// Directories hidden read-only: the state directory and the machines' directory.
    pub hidden: Vec<PathBuf>,
}

/// Refuses at once on a host where [`Jail`] cannot work.
pub fn check_host() -> Result<(), String> {
    check_euid(rustix::process::geteuid().as_raw())
}

/// [`check_host`] for a process running as `euid`.
fn check_euid(euid: u32) -> Result<(), String> {
    if euid == 0 {
        return Ok(());
    }
    Err(format!(
        "the local provider runs each machine's commands as an unprivileged user of its own, \
         in a private mount namespace that hides the state directory and the daemon's socket; \
         that needs gobs-app to run as root, and it runs as uid {euid}. Run gobs-app (the \
         daemon) as root, or use a dummy provider"
    ))
}

/// One mount to make in the child, prepared (as C strings) before `fork`.
struct Prepared {
    /// tmpfs mounts: target, options, read-only.
    tmpfs: Vec<(CString, CString, bool)>,
    /// Directories to make inside those tmpfs, outermost first, down to the machine's.
    mkdirs: Vec<CString>,
    dir: CString,
    uid: u32,
}

fn c_path(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("path {} has a NUL byte", path.display()))
}

impl Jail {
    /// Makes `cmd` run confined (see the module docs).
    pub fn apply(&self, cmd: &mut Command) -> Result<(), String> {
        check_host()?;
        if !self.dir.is_dir() {
            return Err(format!(
                "machine {} has no directory {} (it was removed); destroy the machine and \
                 create it again",
                self.machine,
                self.dir.display()
            ));
        }
        let prepared = self.prepare()?;
        cmd.env_clear()
            .env("HOME", &self.dir)
            .env("PATH", MACHINE_PATH)
            .env("USER", &self.machine)
            .env("LOGNAME", &self.machine)
            .env("LANG", "C.UTF-8")
            .env("GOBS_MACHINE", &self.machine);
        crate::child_fds::exclude(cmd);
        // SAFETY: the closure only makes system calls (unshare, mount, mkdir, chdir,
        // setgroups/setresgid/setresuid, prctl) on data prepared before `fork`; it does not
        // allocate or take locks.
        unsafe {
            cmd.pre_exec(move || enter(&prepared));
        }
        Ok(())
    }

    fn prepare(&self) -> Result<Prepared, String> {
        let mut hide: Vec<(PathBuf, bool)> =
            self.hidden.iter().map(|p| (p.clone(), true)).collect();
        hide.extend(PRIVATE_TMP.iter().map(|p| (PathBuf::from(p), false)));
        // Only directories that exist, and only the outermost of nested ones (a tmpfs over
        // /tmp already hides a state directory under /tmp).
        hide.retain(|(p, _)| p.is_dir());
        hide.sort();
        let mut outer: Vec<(PathBuf, bool)> = Vec::new();
        for (path, ro) in hide {
            if !outer.iter().any(|(o, _)| path.starts_with(o)) {
                outer.push((path, ro));
            }
        }
        let mut mkdirs = Vec::new();
        if let Some((top, _)) = outer.iter().find(|(o, _)| self.dir.starts_with(o)) {
            let mut at = top.clone();
            if let Ok(rest) = self.dir.strip_prefix(top) {
                for part in rest.components() {
                    at.push(part);
                    mkdirs.push(c_path(&at)?);
                }
            }
        }
        let tmpfs = outer
            .iter()
            .map(|(path, ro)| {
                let mode = if *ro {
                    "mode=0755,size=64k"
                } else {
                    "mode=1777"
                };
                Ok((c_path(path)?, c_string(mode), *ro))
            })
            .collect::<Result<_, String>>()?;
        Ok(Prepared {
            tmpfs,
            mkdirs,
            dir: c_path(&self.dir)?,
            uid: self.uid,
        })
    }
}

fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

/// In the child, between `fork` and `exec`.
fn enter(p: &Prepared) -> io::Result<()> {
    // SAFETY: the child has one thread, so no other thread can see its fd table change
    // (and NEWNS does not touch the fd table at all).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }?;
    rustix::mount::mount_change(
        c"/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    // The machine directory, opened in the new namespace (a mount of another namespace
    // cannot be bound), before the tmpfs mounts hide it.
    let dir = rustix::fs::open(
        p.dir.as_c_str(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut path = [0u8; 40];
    let source = proc_fd_path(&mut path, dir.as_raw_fd())?;
    let quiet = MountFlags::NOSUID | MountFlags::NODEV;
    for (target, options, _) in &p.tmpfs {
        rustix::mount::mount(
            c"tmpfs",
            target.as_c_str(),
            c"tmpfs",
            quiet,
            Some(options.as_c_str()),
        )?;
    }
    for dir in &p.mkdirs {
        match rustix::fs::mkdir(dir.as_c_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    rustix::mount::mount_bind(source, p.dir.as_c_str())?;
    drop(dir);
    for (target, _, read_only) in &p.tmpfs {
        if *read_only {
            rustix::mount::mount_remount(
                target.as_c_str(),
                MountFlags::RDONLY | quiet | MountFlags::NOEXEC,
                c"",
            )?;
        }
    }
    rustix::process::chdir(p.dir.as_c_str())?;
    let (uid, gid) = (Uid::from_raw(p.uid), Gid::from_raw(p.uid));
    rustix::thread::set_thread_groups(&[])?;
    rustix::thread::set_thread_res_gid(gid, gid, gid)?;
    rustix::thread::set_thread_res_uid(uid, uid, uid)?;
    rustix::thread::set_no_new_privs(true)?;
    // If the thread that started it ends (the command line killed, the daemon gone), the
    // command ends too. Set after the uid change, which clears it.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    Ok(())
}

/// `/proc/self/fd/FD` in `buf`, without allocating (this runs between `fork` and `exec`).
fn proc_fd_path(buf: &mut [u8; 40], fd: i32) -> io::Result<&std::ffi::CStr> {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let (mut n, mut len) = (
        u32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        0,
    );
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    let end = PREFIX.len() + len;
    buf[end] = 0;
    std::ffi::CStr::from_bytes_with_nul(&buf[..=end])
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Ends every process running as `uid`, whatever its process group or session: a helper
/// child becomes `uid` and signals all it may (`kill(-1, SIGKILL)`, which on Linux spares
/// the caller), until none is left. Gives up after `limit`.
pub fn kill_all(uid: u32, limit: Duration) -> Result<(), String> {
    if uid == 0 {
        return Err("refusing to kill every process of uid 0".to_string());
    }
    let start = Instant::now();
    loop {
        let mut helper = Command::new("/bin/true");
        crate::child_fds::exclude(&mut helper);
        // SAFETY: the closure only makes system calls and ends with `_exit`; it does not
        // allocate or take locks.
        unsafe {
            helper.pre_exec(move || {
                let (u, g) = (Uid::from_raw(uid), Gid::from_raw(uid));
                let dropped = rustix::thread::set_thread_groups(&[])
                    .and_then(|()| rustix::thread::set_thread_res_gid(g, g, g))
                    .and_then(|()| rustix::thread::set_thread_res_uid(u, u, u));
                let code = match dropped {
                    Err(_) => 4,
                    // SAFETY: kill(2) with -1 and a valid signal.
                    Ok(()) => match libc::kill(-1, libc::SIGKILL) {
                        0 => 0,
                        _ if io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) => 3,
                        _ => 5,
                    },
                };
                libc::_exit(code)
            });
        }
        let status = helper
            .spawn()
            .and_then(|mut child| child.wait())
            .map_err(|e| {
                format!("cannot start the helper that stops uid {uid}'s processes: {e}")
            })?;
        match status.code() {
            Some(3) => return Ok(()),
            // Signalled some; zombies count too, so done once none is alive.
            Some(0) if live_processes(uid) == 0 => return Ok(()),
            Some(0) => {}
            other => {
                return Err(format!(
                    "cannot stop the processes of uid {uid} (the helper exited with {other:?})"
                ));
            }
        }
        if start.elapsed() >= limit {
            return Err(format!(
                "processes of uid {uid} were still starting after {}; some may be left",
                humantime::format_duration(limit)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How many processes of `uid` are alive (not zombies), from `/proc`.
pub fn live_processes(uid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| {
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_string()
            };
            let real_uid = field("Uid:").split_whitespace().next().map(str::to_string);
            real_uid.as_deref() == Some(uid.to_string().as_str())
                && !field("State:").starts_with('Z')
        })
        .count()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_host_without_root_is_refused_saying_why() {
        assert!(check_euid(0).is_ok());
        let err = check_euid(1000).unwrap_err();
        assert!(err.contains("needs gobs-app to run as root"), "{err}");
        assert!(err.contains("uid 1000"), "{err}");
    }

    #[test]
    fn nested_hidden_directories_get_one_tmpfs_and_the_machine_dir_is_made_inside() {
        let state = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let machines = state.path().join("machines");
        let dir = machines.join("m");
        std::fs::create_dir_all(&dir).unwrap();
        let jail = Jail {
            machine: "m".into(),
            dir: dir.clone(),
            uid: 1 << 30,
            hidden: vec![state.path().to_path_buf(), machines.clone()],
        };
        let prepared = jail.prepare().unwrap();
        let targets: Vec<String> = prepared
            .tmpfs
            .iter()
            .map(|(t, _, _)| t.to_string_lossy().into_owned())
            .collect();
        // The state directory is under /tmp, so the private /tmp hides it already.
        let tmp = std::env::temp_dir();
        if state.path().starts_with("/tmp") && tmp == Path::new("/tmp") {
            assert!(targets.contains(&"/tmp".to_string()), "{targets:?}");
            assert!(
                !targets
                    .iter()
                    .any(|t| t.starts_with(&state.path().to_string_lossy().into_owned()))
            );
        }
        let last = prepared
            .mkdirs
            .last()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(Path::new(&last), dir);
        // Outermost first, each one level deeper.
        for pair in prepared.mkdirs.windows(2) {
            let (a, b) = (pair[0].to_string_lossy(), pair[1].to_string_lossy());
            assert!(b.starts_with(a.as_ref()), "{a} then {b}");
        }
    }

    #[test]
    fn proc_fd_paths_are_written_without_allocating() {
        let mut buf = [0u8; 40];
        assert_eq!(
            proc_fd_path(&mut buf, 7).unwrap().to_str().unwrap(),
            "/proc/self/fd/7"
        );
        let mut buf = [0u8; 40];
        assert_eq!(
            proc_fd_path(&mut buf, 1_234_567).unwrap().to_str().unwrap(),
            "/proc/self/fd/1234567"
        );
    }
}
