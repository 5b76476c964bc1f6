//! A container's resource limits: a cgroup named after the machine's tag, with a memory
//! limit and a process-count limit. Cgroup v2 where its `memory` and `pids` controllers are
//! available (a unified hierarchy at `/sys/fs/cgroup`), else the v1 `memory` and `pids`
//! hierarchies (as on hosts with mixed v1/v2, where the v2 tree has no such controllers).
//!
//! On v2 a cgroup gets the limit files of a controller only when its parent enables that
//! controller for its children (`cgroup.subtree_control`): [`Cgroup::create`] enables
//! `memory` and `pids` there when they are not yet.
//!
//! [`Cgroup::remove`] kills what is still inside and removes the directories; it succeeds
//! when there is nothing to remove.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The controllers a container's cgroup limits.
const CONTROLLERS: [&str; 2] = ["memory", "pids"];

/// One container's cgroup directories (one for v2, one per controller for v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// The directories, with the file each limit goes to.
    dirs: Vec<(PathBuf, Vec<(&'static str, String)>)>,
    /// On v2, the parent's `cgroup.subtree_control`, which must enable [`CONTROLLERS`].
    subtree_control: Option<PathBuf>,
}

impl Cgroup {
    /// The cgroup of the container tagged `tag`, limited to `memory` bytes and `pids`
    /// processes, on this host's hierarchy (not made yet; see [`Cgroup::create`]).
    pub fn plan(tag: &str, memory: u64, pids: u64) -> Result<Cgroup, String> {
        Cgroup::plan_in(Path::new(CGROUP_ROOT), tag, memory, pids)
    }

    /// [`Cgroup::plan`] on the hierarchies mounted at `root` (a v2 mount, or a directory
    /// of v1 mounts such as `/sys/fs/cgroup`).
    pub fn plan_in(root: &Path, tag: &str, memory: u64, pids: u64) -> Result<Cgroup, String> {
        let name = format!("gobs-{tag}");
        let v2 = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if CONTROLLERS
            .iter()
            .all(|c| v2.split_whitespace().any(|x| x == *c))
        {
            return Ok(Cgroup {
                dirs: vec![(
                    root.join(name),
                    vec![("memory.max", memory.to_string()), ("pids.max", pids.to_string())],
                )],
                subtree_control: Some(root.join("cgroup.subtree_control")),
            });
        }
        let (mem, pid) = (root.join("memory"), root.join("pids"));
        if mem.join("memory.limit_in_bytes").exists() && pid.join("cgroup.procs").exists() {
            return Ok(Cgroup {
                dirs: vec![
                    (
                        mem.join(&name),
                        vec![("memory.limit_in_bytes", memory.to_string())],
                    ),
                    (pid.join(&name), vec![("pids.max", pids.to_string())]),
                ],
                subtree_control: None,
            });
        }
        let v2_has = if v2.trim().is_empty() {
            "none".to_string()
        } else {
            v2.trim().to_string()
        };
        Err(format!(
            "this host has neither cgroup v2 with the memory and pids controllers (the v2 \
             controllers available under {} are: {v2_has}) nor the v1 memory and pids \
             hierarchies there, so container limits cannot be set; mount them (or free the \
             controllers from v1) and try again",
            root.display()
        ))
    }

    /// Whether this is a v2 (unified) cgroup.
    pub fn is_v2(&self) -> bool {
        self.subtree_control.is_some()
    }

    /// The directories.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|(d, _)| d.as_path())
    }

    /// Makes the directories and writes the limits (on v2, enabling the controllers for
    /// the parent's children first).
    pub fn create(&self) -> Result<(), String> {
        if let Some(control) = &self.subtree_control {
            enable_controllers(control)?;
        }
        for (dir, limits) in &self.dirs {
            match std::fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create cgroup {}: {e}", dir.display())),
            }
            for (file, value) in limits {
                std::fs::write(dir.join(file), value).map_err(|e| {
                    format!("cannot set {} of cgroup {}: {e}", file, dir.display())
                })?;
            }
        }
        Ok(())
    }

    /// Moves process `pid` (and so what it starts later) into the cgroup.
    pub fn add(&self, pid: i32) -> Result<(), String> {
        for (dir, _) in &self.dirs {
            std::fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(|e| {
                format!("cannot move process {pid} into cgroup {}: {e}", dir.display())
            })?;
        }
        Ok(())
    }

    /// The processes inside, by pid.
    pub fn processes(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .dirs
            .iter()
            .filter_map(|(d, _)| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills every process inside, waits (at most `limit`) until they are gone, and
    /// removes the directories. Nothing to do for directories that are not there.
    pub fn remove(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let pids = self.processes();
            if pids.is_empty() {
                break;
            }
            for pid in &pids {
                if let Some(pid) = rustix::process::Pid::from_raw(*pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "processes {pids:?} of the container's cgroup did not end within {}",
                    humantime::format_duration(limit)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for (dir, _) in &self.dirs {
            // A cgroup whose last process just ended may be busy for a moment.
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!("cgroup {} not removable yet: {e}", dir.display());
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => {
                        return Err(format!("cannot remove cgroup {}: {e}", dir.display()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Enables [`CONTROLLERS`] in a v2 `cgroup.subtree_control` that does not list them yet.
fn enable_controllers(control: &Path) -> Result<(), String> {
    let enabled = std::fs::read_to_string(control)
        .map_err(|e| format!("cannot read {}: {e}", control.display()))?;
    let missing: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|x| x == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::write(control, missing.join(" ")).map_err(|e| {
        format!(
            "cannot enable the {} controllers in {} ({e}); a cgroup that holds processes \
             cannot enable controllers for its children: run the daemon in a cgroup of its own",
            missing.join(" "),
            control.display()
        )
    })
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
