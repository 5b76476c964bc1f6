//! A small tmpfs of its own, for tests that fill a disk: mounted on a fresh temporary
//! directory, grown on demand, unmounted when dropped (a failed test too).

use std::path::Path;
use std::process::Command;

/// A tmpfs mounted on a temporary directory; see the module docs.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s syntax: `"128k"`, `"8m"`). Check
    /// [`Need::MountTmpfs`](crate::Need::MountTmpfs) first: this fails the test, saying
    /// why, when mounting is refused.
    #[track_caller]
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir()
            .unwrap_or_else(|e| panic!("no temporary directory to mount a tmpfs on: {e}"));
        let out = mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "gobs-test"],
            &dir,
        );
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs on {}: {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes it `size` big (room again after a test filled it).
    #[track_caller]
    pub fn grow(&self, size: &str) {
        let out = mount(&["-o", &format!("remount,size={size}")], &self.dir);
        assert!(
            out.status.success(),
            "cannot grow the tmpfs on {} to {size}: {}",
            self.dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

/// Runs `mount ARGS DIR`.
#[track_caller]
fn mount(args: &[&str], dir: &tempfile::TempDir) -> std::process::Output {
    Command::new("mount")
        .args(args)
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run mount (apt-get install mount): {e}"))
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process a failed test left inside must not keep the mount.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
