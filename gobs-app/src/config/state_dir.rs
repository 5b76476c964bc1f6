//! Where gobs-app keeps its state: resolving the state directory and naming the files in it.
//!
//! Resolution is a pure function of the `--state-dir` flag and an environment lookup, so it
//! can be tested without touching the process environment:
//!
//! 1. `--state-dir DIR`, or `$GOBS_STATE_DIR` (clap reads it as the flag's value)
//! 2. `$XDG_STATE_HOME/gobs` (only if absolute, as the XDG spec requires)
//! 3. `$HOME/.local/state/gobs`
//!
//! Empty values count as unset.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where a state directory came from; shown in logs and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--state-dir` or `$GOBS_STATE_DIR`
    Flag,
    /// `$XDG_STATE_HOME/gobs`
    XdgStateHome,
    /// `$HOME/.local/state/gobs`
    Home,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "--state-dir or $GOBS_STATE_DIR",
            Source::XdgStateHome => "$XDG_STATE_HOME/gobs",
            Source::Home => "$HOME/.local/state/gobs",
        })
    }
}

/// A resolved state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    /// The directory (as given; made absolute by [`StatePaths::new`]).
    pub path: PathBuf,
    /// Which rule chose it.
    pub source: Source,
}

/// No rule could name a state directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot tell where to keep gobs state: none of --state-dir, $GOBS_STATE_DIR, \
     $XDG_STATE_HOME or $HOME is set; pass --state-dir DIR or set GOBS_STATE_DIR=DIR"
)]
pub struct Unresolved;

/// Picks the state directory from the flag and the environment (see the module docs).
///
/// ```
/// use std::path::{Path, PathBuf};
/// use gobs_app::config::state_dir::{resolve, Source};
///
/// let env = |key: &str| (key == "HOME").then(|| "/home/ada".into());
/// let dir = resolve(None, env).unwrap();
/// assert_eq!(dir.path, PathBuf::from("/home/ada/.local/state/gobs"));
/// assert_eq!(dir.source, Source::Home);
///
/// let dir = resolve(Some(Path::new("/srv/gobs")), env).unwrap();
/// assert_eq!(dir.source, Source::Flag);
/// ```
pub fn resolve(
    flag: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<StateDir, Unresolved> {
    let var = |key: &str| {
        env(key)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(path) = flag.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(StateDir {
            path: path.to_path_buf(),
            source: Source::Flag,
        });
    }
    if let Some(base) = var("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
        return Ok(StateDir {
            path: base.join("gobs"),
            source: Source::XdgStateHome,
        });
    }
    if let Some(home) = var("HOME") {
        return Ok(StateDir {
            path: home.join(".local").join("state").join("gobs"),
            source: Source::Home,
        });
    }
    Err(Unresolved)
}

/// The files gobs-app keeps in a state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePaths {
    /// The state directory itself (absolute).
    pub dir: PathBuf,
    /// Which rule chose it.
    pub source: Source,
}

impl StatePaths {
    /// Makes the directory absolute (relative to the current directory) so that messages
    /// and the socket path do not depend on where a command was started.
    pub fn new(state_dir: StateDir) -> io::Result<StatePaths> {
        Ok(StatePaths {
            dir: std::path::absolute(&state_dir.path)?,
            source: state_dir.source,
        })
    }

    /// The daemon's control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("daemon.sock")
    }

    /// The lock file held by whoever has the state open (a daemon or one command).
    pub fn lock(&self) -> PathBuf {
        self.dir.join("state.lock")
    }

    /// The lock file held by a daemon for as long as it runs, and by nothing else.
    pub fn daemon_lock(&self) -> PathBuf {
        self.dir.join("daemon.lock")
    }

    /// The config file read when neither `--config` nor `$GOBS_CONFIG` is given.
    pub fn default_config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// Creates the directory (and missing parents) readable by the owner only, and
    /// tightens an existing one that others could read (see [`private_dir`]).
    pub fn create(&self) -> io::Result<()> {
        private_dir(&self.dir)
    }
}

/// The file that says a state directory's `vats/` was made: once it exists, a missing
/// `vats/` is refused like a missing store, not taken for a fresh start.
pub const VATS_MARKER: &str = "vats.created";

/// Whether `vats` (the state directory's store directory) was made and is now gone: the
/// evidence, when it is.
pub fn vats_gone(state_dir: &Path, vats: &Path) -> Option<String> {
    let marker = state_dir.join(VATS_MARKER);
    (marker.exists() && !vats.exists()).then(|| {
        format!(
            "{} says it was made here (and the state directory is otherwise still there)",
            marker.display()
        )
    })
}

/// Records that `vats` holds a store (when it does), so that losing it later is noticed.
pub fn mark_vats_made(state_dir: &Path, vats: &Path) -> io::Result<()> {
    let marker = state_dir.join(VATS_MARKER);
    if marker.exists() || !vats.join(gobs_runtime::persist::MARKER).exists() {
        return Ok(());
    }
    let mut file = std::fs::File::create(&marker)?;
    std::io::Write::write_all(
        &mut file,
        b"vats/ was made here; gobs-app refuses to start without it\n",
    )?;
    file.sync_all()
}

/// Makes `dir` private with [`private_dir`], and each file directly in it that group or
/// others may access owner-only (0600): the stores an earlier build made 0644.
pub fn private_dir_and_files(dir: &Path) -> io::Result<()> {
    private_dir(dir)?;
    let mut tightened = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600))?;
            tightened += 1;
        }
    }
    if tightened > 0 {
        tracing::warn!(
            "{tightened} files in {} were readable by others; made them private (0600)",
            dir.display()
        );
    }
    Ok(())
}

/// Makes `dir` (and missing parents) with mode 0700, or tightens an existing `dir` to 0700
/// if group or others have any access to it (with a warning: state is private).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} was readable by others (mode {:o}); making it private (0700)",
            dir.display(),
            mode & 0o7777
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |key| map.get(key).cloned()
    }

    const ALL: &[(&str, &str)] = &[("XDG_STATE_HOME", "/xdg"), ("HOME", "/home/u")];

    #[test]
    fn flag_wins_over_everything() {
        let dir = resolve(Some(Path::new("/flag")), env(ALL)).unwrap();
        assert_eq!(dir.path, PathBuf::from("/flag"));
        assert_eq!(dir.source, Source::Flag);
    }

    #[test]
    fn xdg_state_home_gets_a_gobs_subdirectory() {
        let dir = resolve(None, env(ALL)).unwrap();
        assert_eq!(dir.path, PathBuf::from("/xdg/gobs"));
        assert_eq!(dir.source, Source::XdgStateHome);
    }

    #[test]
    fn home_is_the_last_resort() {
        let dir = resolve(None, env(&ALL[1..])).unwrap();
        assert_eq!(dir.path, PathBuf::from("/home/u/.local/state/gobs"));
        assert_eq!(dir.source, Source::Home);
    }

    #[test]
    fn empty_values_and_relative_xdg_are_ignored() {
        let e = env(&[("XDG_STATE_HOME", "relative/xdg"), ("HOME", "/home/u")]);
        let dir = resolve(Some(Path::new("")), e).unwrap();
        assert_eq!(dir.source, Source::Home);
    }

    #[test]
    fn nothing_set_names_the_flag_and_the_variable() {
        let err = resolve(None, env(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--state-dir"), "{msg}");
        assert!(msg.contains("GOBS_STATE_DIR"), "{msg}");
    }

    #[test]
    fn paths_are_absolute_and_named() {
        let paths = StatePaths::new(StateDir {
            path: PathBuf::from("rel"),
            source: Source::Flag,
        })
        .unwrap();
        assert!(paths.dir.is_absolute());
        assert!(paths.socket().ends_with("rel/daemon.sock"));
        assert!(paths.lock().ends_with("rel/state.lock"));
        assert!(paths.daemon_lock().ends_with("rel/daemon.lock"));
        assert!(paths.default_config().ends_with("rel/config.toml"));
    }
}

#[cfg(test)]
mod private_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn an_open_directory_and_its_files_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let vats = dir.path().join("vats");
        std::fs::create_dir(&vats).unwrap();
        std::fs::set_permissions(&vats, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = vats.join("boss.log");
        std::fs::write(&store, b"x").unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_dir_and_files(&vats).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&vats), 0o700);
        assert_eq!(mode(&store), 0o600);
        assert_eq!(std::fs::read(&store).unwrap(), b"x");
    }
}
