//! A container's root filesystem: a directory of its own (`<machine dir>/root`) with
//! busybox (from Debian's `busybox-static`) and a link per applet, a minimal `/etc`, and
//! mount points. The hob-client (this gobs-app binary) is bind-mounted read-only at
//! `/hob/gobs-app` (copied there instead when its file was replaced since the daemon
//! started), and each shared library it needs at its own path: the container sees those
//! files of the host and nothing else.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `busybox-static` puts busybox.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// The shared libraries `binary` loads (with the dynamic loader), from `ldd`; empty for a
/// static binary.
pub fn shared_libs(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run `ldd` on {} (Debian package libc-bin): {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable": nothing to bring along.
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// Whether `binary` needs no shared libraries.
pub fn is_static(binary: &Path) -> bool {
    shared_libs(binary).is_ok_and(|l| l.is_empty())
}

/// Builds the root filesystem of machine `hostname` in `root` (which must not exist), with
/// busybox from `busybox`.
pub fn build(root: &Path, busybox: &Path, hostname: &str) -> Result<(), String> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        format!("cannot {what} {}: {e}", path.display())
    };
    if !busybox.is_file() {
        return Err(format!(
            "busybox is not at {} (install Debian package busybox-static, or set `busybox` in \
             the container provider's config)",
            busybox.display()
        ));
    }
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true).mode(0o755);
    for d in [
        "bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "hob/state", "usr/bin",
        "var/tmp",
    ] {
        let p = root.join(d);
        dirs.create(&p).map_err(|e| io("create", &p, e))?;
    }
    let bb = root.join("bin/busybox");
    std::fs::copy(busybox, &bb).map_err(|e| io("copy busybox to", &bb, e))?;
    std::fs::set_permissions(&bb, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io("make executable", &bb, e))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| format!("cannot run {} --list: {e}", busybox.display()))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = root.join("bin").join(applet);
        match std::os::unix::fs::symlink("busybox", &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("link", &link, e)),
        }
    }
    let files = [
        ("etc/hostname", format!("{hostname}\n")),
        (
            "etc/hosts",
            format!("127.0.0.1 localhost\n127.0.1.1 {hostname}\n"),
        ),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n".to_string()),
        ("etc/group", "root:x:0:\n".to_string()),
    ];
    for (name, text) in files {
        let p = root.join(name);
        std::fs::write(&p, text).map_err(|e| io("write", &p, e))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .map_err(|e| io("set the mode of", &root.join("tmp"), e))?;
    Ok(())
}

/// Gives every file of `root` (links themselves, not their targets) to uid and gid `id`:
/// the container's root, in its user namespace.
pub fn chown_all(root: &Path, id: u32) -> Result<(), String> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::lchown(&path, Some(id), Some(id))
            .map_err(|e| format!("cannot give {} to uid {id}: {e}", path.display()))?;
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)
                .map_err(|e| format!("cannot list {}: {e}", path.display()))?
            {
                let entry = entry.map_err(|e| format!("cannot list {}: {e}", path.display()))?;
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_test_binary_needs_libc_and_its_loader() {
        let me = std::env::current_exe().unwrap();
        let libs = shared_libs(&me).unwrap();
        assert!(libs.iter().any(|l| l.to_string_lossy().contains("libc")), "{libs:?}");
        assert!(libs.iter().all(|l| l.is_absolute() && l.exists()), "{libs:?}");
    }

    #[test]
    fn a_missing_busybox_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&dir.path().join("root"), Path::new("/nonexistent/busybox"), "m").unwrap_err();
        assert!(err.contains("busybox-static"), "{err}");
    }
}
