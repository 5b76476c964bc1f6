//! What the workspace's tests need from the machine, said out loud: never a silent skip.
//!
//! A test that needs something a machine may lack (root, a Debian package, a kernel feature,
//! a Goblins install) is written like this:
//!
//! ```ignore
//! #[test]
//! #[cfg_attr(not(gobs_require_all), ignore = "needs root and busybox: set GOBS_REQUIRE_PRIVILEGED=1 (CI sets CI) to run it")]
//! fn a_container_is_its_own_host() {
//!     gobs_testkit::need(&[Need::Root, Need::Command("busybox", "busybox-static")]);
//!     // …
//! }
//! ```
//!
//! - An ordinary `cargo test` reports such a test as **ignored**, with its reason, in the
//!   summary line (`… passed; 0 failed; 7 ignored`): visible, never green by accident.
//! - With `CI` or `GOBS_REQUIRE_PRIVILEGED` set when the tests are *built*, the crate's
//!   `build.rs` (gobs-app's is the one to copy) turns on `cfg(gobs_require_all)`, the test
//!   runs, and [`need`]
//!   fails it naming every missing requirement and how to get it. So `CI=true cargo test
//!   --workspace` as a user without root fails, saying so; as root on a prepared machine it
//!   passes.
//!
//! The probes check what a test will actually do (unshare, mount, write a cgroup), not just
//! the uid.

mod tmpfs;
pub use tmpfs::Tmpfs;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// True when missing requirements must fail tests: `CI` or `GOBS_REQUIRE_PRIVILEGED` is set
/// to anything but empty, `0` or `false` (the same rule as the crates' `build.rs`).
pub fn required() -> bool {
    ["CI", "GOBS_REQUIRE_PRIVILEGED"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false")))
}

/// One thing a test needs from the machine.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Effective uid 0.
    Root,
    /// A command on `PATH`, and the Debian package that has it.
    Command(&'static str, &'static str),
    /// A file, and how to get it (e.g. `"/bin/busybox"`, `"apt-get install busybox-static"`).
    File(&'static str, &'static str),
    /// Mounting a tmpfs in a new mount namespace (root or CAP_SYS_ADMIN).
    MountTmpfs,
    /// Creating and removing a cgroup on the hierarchy the host uses (v2, or v1's `pids`).
    CgroupWrite,
    /// New mount, UTS, IPC, network and PID namespaces, as a container's (root or
    /// CAP_SYS_ADMIN, and util-linux's unshare).
    Namespaces,
    /// User `nobody` may make a user namespace of its own (the host allows unprivileged
    /// user namespaces; util-linux's runuser and unshare).
    UnprivilegedUserNamespaces,
    /// A kernel image `/boot/vmlinuz-*` this user can read, to boot virtual machines with.
    BootKernel,
    /// Spritely Goblins 0.18 installed by `shared/tools/goblins/install.sh`.
    Goblins,
}

impl Need {
    /// `Ok` if the machine has it; otherwise what is missing and how to get it.
    pub fn check(self) -> Result<(), String> {
        match self {
            Need::Root => {
                if rustix::process::geteuid().is_root() {
                    Ok(())
                } else {
                    Err("root (run the tests as root)".into())
                }
            }
            Need::Command(name, package) => {
                if on_path(name) {
                    Ok(())
                } else {
                    Err(format!("the command `{name}` (apt-get install {package})"))
                }
            }
            Need::File(path, how) => {
                if Path::new(path).exists() {
                    Ok(())
                } else {
                    Err(format!("{path} ({how})"))
                }
            }
            Need::MountTmpfs => probe(
                "unshare",
                &[
                    "--mount",
                    "--propagation",
                    "private",
                    "mount",
                    "-t",
                    "tmpfs",
                    "gobs-probe",
                    "/mnt",
                ],
                "mounting a tmpfs in a mount namespace (root or CAP_SYS_ADMIN, and util-linux's unshare)",
            ),
            Need::CgroupWrite => cgroup_write(),
            Need::Namespaces => probe(
                "unshare",
                &[
                    "--mount", "--uts", "--ipc", "--net", "--pid", "--fork", "true",
                ],
                "new mount, UTS, IPC, network and PID namespaces (root or CAP_SYS_ADMIN, and \
                 util-linux's unshare)",
            ),
            Need::UnprivilegedUserNamespaces => probe(
                "runuser",
                &[
                    "-u",
                    "nobody",
                    "--",
                    "unshare",
                    "--user",
                    "--map-root-user",
                    "true",
                ],
                "user namespaces for unprivileged users (sysctl user.max_user_namespaces > 0, \
                 kernel.unprivileged_userns_clone = 1; util-linux's runuser and unshare)",
            ),
            Need::BootKernel => boot_kernel().map(drop),
            Need::Goblins => {
                if Path::new("/opt/goblins/env.sh").is_file() {
                    Ok(())
                } else {
                    Err("Goblins 0.18 in /opt/goblins (as root: bash shared/tools/goblins/install.sh)".into())
                }
            }
        }
    }
}

/// Checks every need; if any is missing, fails the calling test naming all of them.
///
/// Call it first in a test marked `#[cfg_attr(not(gobs_require_all), ignore = "…")]` (see the
/// crate docs): such a test runs only when missing requirements must fail it.
#[track_caller]
pub fn need(needs: &[Need]) {
    let missing: Vec<String> = needs.iter().filter_map(|n| n.check().err()).collect();
    if !missing.is_empty() {
        panic!(
            "this test needs what the machine lacks: {}. (It runs because CI or \
             GOBS_REQUIRE_PRIVILEGED is set; without them it is reported as ignored.)",
            missing.join("; ")
        );
    }
}

/// Whether every need is met, without failing: for tests that choose between two paths.
pub fn has(needs: &[Need]) -> bool {
    needs.iter().all(|n| n.check().is_ok())
}

/// The newest kernel image in `/boot` (by the numbers in its release) that this user can
/// read; otherwise what is missing.
pub fn boot_kernel() -> Result<PathBuf, String> {
    let missing = "a readable kernel image /boot/vmlinuz-* (apt-get install linux-image-amd64; \
                   Debian's are readable by root only)";
    let entries = std::fs::read_dir("/boot").map_err(|e| format!("{missing}: /boot: {e}"))?;
    let mut found: Vec<(Vec<u64>, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| {
            let release = p.file_name()?.to_str()?.strip_prefix("vmlinuz-")?;
            let key = release
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect();
            Some((key, p))
        })
        .collect();
    found.sort();
    let (_, newest) = found.pop().ok_or_else(|| missing.to_string())?;
    std::fs::File::open(&newest)
        .map(|_| newest.clone())
        .map_err(|e| format!("{missing}: {}: {e}", newest.display()))
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

fn probe(program: &str, args: &[&str], what: &str) -> Result<(), String> {
    let ran = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match ran {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{what}: `{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{what}: cannot run `{program}`: {e}")),
    }
}

/// The cgroup directory under which a test may make its own: the v2 root when the host has
/// a unified hierarchy, v1's `pids` controller otherwise.
pub fn cgroup_root() -> Option<&'static Path> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").is_file() {
        Some(Path::new("/sys/fs/cgroup"))
    } else if Path::new("/sys/fs/cgroup/pids").is_dir() {
        Some(Path::new("/sys/fs/cgroup/pids"))
    } else {
        None
    }
}

fn cgroup_write() -> Result<(), String> {
    let Some(root) = cgroup_root() else {
        return Err(
            "a cgroup hierarchy (neither /sys/fs/cgroup v2 nor v1's pids is mounted)".into(),
        );
    };
    // Tests of one binary probe at once, on threads of one process: the name is unique per
    // probe, not per process.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = root.join(format!("gobs-probe-{}-{n}", std::process::id()));
    std::fs::create_dir(&dir)
        .and_then(|()| std::fs::remove_dir(&dir))
        .map_err(|e| {
            format!(
                "creating a cgroup under {} (root, and a writable cgroup fs): {e}",
                root.display()
            )
        })
}
