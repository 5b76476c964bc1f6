//! A qemu machine's initramfs: an uncompressed cpio archive (the kernel's `newc` format)
//! holding busybox, the virtio modules the guest needs for its network, the hob-client
//! (this gobs-app binary) with the shared libraries it loads, the machine's registration
//! sturdyref, and a small `/init` that loads the modules, brings up the network of qemu's
//! user-mode netdev (the guest is 10.0.2.15, the host 10.0.2.2) and runs the hob-client,
//! starting it again whenever it ends.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The modules the guest loads, by name, before its network comes up (with what they
/// depend on, from the kernel's `modules.dep`).
pub const WANTED_MODULES: &[&str] = &["virtio_pci", "virtio_net"];
/// Where the hob-client binary is inside the guest.
pub const HOB_BINARY: &str = "/hob/gobs-app";
/// What the guest's init prints on the console once the kernel ran it: the sign that the
/// accelerator works.
pub const INIT_MARK: &str = "gobs-qemu-init: up";

/// What goes into the archive.
#[derive(Debug)]
pub struct Contents<'a> {
    /// Machine name (the guest's hostname).
    pub hostname: &'a str,
    /// Busybox on the host.
    pub busybox: &'a Path,
    /// The host's modules directory of the guest's kernel (`/lib/modules/RELEASE`).
    pub modules: &'a Path,
    /// The hob-client binary on the host.
    pub hob_binary: &'a Path,
    /// The shared libraries it loads, at their host paths (copied to the same paths).
    pub libs: &'a [PathBuf],
    /// The one-time registration sturdyref.
    pub registration: &'a str,
}

/// The module files (relative to the modules directory) to load, in load order.
pub fn module_order(modules_dep: &str, wanted: &[&str]) -> Result<Vec<String>, String> {
    let mut order: Vec<String> = Vec::new();
    for name in wanted {
        let line = modules_dep
            .lines()
            .find(|l| {
                l.split_once(':').is_some_and(|(m, _)| {
                    Path::new(m)
                        .file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f == format!("{name}.ko"))
                })
            })
            .ok_or_else(|| {
                format!("the kernel's modules.dep lists no module {name} (is it built in, or is this the modules directory of another kernel?)")
            })?;
        let (module, deps) = line.split_once(':').unwrap_or((line, ""));
        // modules.dep lists a module's dependencies nearest first: load them last first.
        for m in deps
            .split_whitespace()
            .rev()
            .chain(std::iter::once(module.trim()))
        {
            if !order.iter().any(|o| o == m) {
                order.push(m.to_string());
            }
        }
    }
    Ok(order)
}

/// The guest's `/init`.
pub fn init_script(hostname: &str, modules: &[String]) -> String {
    let loads: String = modules
        .iter()
        .map(|m| format!("insmod /modules/{} || echo \"gobs-qemu-init: cannot load {m}\"\n", base(m)))
        .collect();
    format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         export PATH=/bin:/sbin:/usr/bin HOME=/root\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         mkdir -p /dev/pts\n\
         mount -t devpts devpts /dev/pts\n\
         mount -t tmpfs tmpfs /tmp\n\
         echo \"{INIT_MARK}\"\n\
         {loads}\
         hostname {hostname}\n\
         ip link set lo up\n\
         ip link set eth0 up\n\
         ip addr add 10.0.2.15/24 dev eth0\n\
         ip route add default via 10.0.2.2\n\
         echo \"gobs-qemu-init: network up; starting the hob-client\"\n\
         export GOBS_HOB_REGISTRATION=\"$(cat /etc/hob/registration)\"\n\
         cd /root\n\
         [ -x {HOB_BINARY} ] || echo \"gobs-qemu-init: {HOB_BINARY} is missing: the initramfs did not unpack (too little memory?)\"\n\
         while true; do\n\
         \x20 {HOB_BINARY} hob-client --dir /hob/state </dev/null\n\
         \x20 echo \"gobs-qemu-init: the hob-client ended ($?); starting it again in 1 s\"\n\
         \x20 sleep 1\n\
         done\n"
    )
}

fn base(module: &str) -> String {
    Path::new(module)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| module.to_string())
}

/// Writes the archive of `contents` to `out`.
pub fn write(out: &Path, contents: &Contents<'_>) -> Result<(), String> {
    let dep_path = contents.modules.join("modules.dep");
    let dep = std::fs::read_to_string(&dep_path).map_err(|e| {
        format!(
            "cannot read {}: {e}; install the kernel's modules (Debian package linux-image-amd64), or set `modules` in the qemu provider's config",
            dep_path.display()
        )
    })?;
    let modules = module_order(&dep, WANTED_MODULES)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut w = Cpio::new(BufWriter::new(file));
    let io = |e: std::io::Error| format!("cannot write {}: {e}", out.display());
    for d in ["bin", "sbin", "usr", "usr/bin", "proc", "sys", "dev", "tmp", "root", "etc", "etc/hob", "hob", "hob/state", "modules"] {
        w.dir(d).map_err(io)?;
    }
    w.file_from("bin/busybox", contents.busybox, 0o755)?;
    w.file("init", init_script(contents.hostname, &modules).as_bytes(), 0o755)
        .map_err(io)?;
    w.file("etc/hostname", format!("{}\n", contents.hostname).as_bytes(), 0o644)
        .map_err(io)?;
    w.file("etc/hob/registration", contents.registration.as_bytes(), 0o600)
        .map_err(io)?;
    for m in &modules {
        w.file_from(&format!("modules/{}", base(m)), &contents.modules.join(m), 0o644)?;
    }
    w.file_from(HOB_BINARY.trim_start_matches('/'), contents.hob_binary, 0o755)?;
    w.libs(contents.libs)?;
    w.finish().map_err(io)
}

/// Writes to `out` an archive that is not a machine's: busybox, the given `/init` script,
/// and `programs` (inside path, host path) with the shared `libs` they load. For tests
/// that boot a kernel to check something on it.
pub fn write_plain(
    out: &Path,
    busybox: &Path,
    init: &str,
    programs: &[(&str, &Path)],
    libs: &[PathBuf],
) -> Result<(), String> {
    let file = std::fs::File::create(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut w = Cpio::new(BufWriter::new(file));
    let io = |e: std::io::Error| format!("cannot write {}: {e}", out.display());
    for d in ["bin", "sbin", "usr", "usr/bin", "proc", "sys", "dev", "tmp", "root"] {
        w.dir(d).map_err(io)?;
    }
    w.file_from("bin/busybox", busybox, 0o755)?;
    w.file("init", init.as_bytes(), 0o755).map_err(io)?;
    for (inside, host) in programs {
        w.parents(inside.trim_start_matches('/')).map_err(io)?;
        w.file_from(inside.trim_start_matches('/'), host, 0o755)?;
    }
    w.libs(libs)?;
    w.finish().map_err(io)
}

/// A `newc` cpio writer.
struct Cpio<W: Write> {
    out: W,
    ino: u32,
    dirs: Vec<String>,
}

impl<W: Write> Cpio<W> {
    fn new(out: W) -> Cpio<W> {
        Cpio {
            out,
            ino: 1,
            dirs: Vec::new(),
        }
    }

    fn header(&mut self, name: &str, mode: u32, size: usize) -> std::io::Result<()> {
        let ino = self.ino;
        self.ino += 1;
        let nlink = if mode & 0o040000 != 0 { 2 } else { 1 };
        let head = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.out.write_all(head.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(head.len() + name.len() + 1)
    }

    fn pad(&mut self, len: usize) -> std::io::Result<()> {
        let n = (4 - len % 4) % 4;
        self.out.write_all(&[0u8; 3][..n])
    }

    fn dir(&mut self, name: &str) -> std::io::Result<()> {
        if self.dirs.iter().any(|d| d == name) {
            return Ok(());
        }
        self.dirs.push(name.to_string());
        self.header(name, 0o040755, 0)
    }

    /// The directories above `inside` (e.g. lib64, lib/x86_64-linux-gnu).
    fn parents(&mut self, inside: &str) -> std::io::Result<()> {
        let mut at = String::new();
        if let Some(parent) = Path::new(inside).parent() {
            for part in parent.components() {
                if !at.is_empty() {
                    at.push('/');
                }
                at.push_str(&part.as_os_str().to_string_lossy());
                self.dir(&at)?;
            }
        }
        Ok(())
    }

    /// Shared libraries, each at its host path.
    fn libs(&mut self, libs: &[PathBuf]) -> Result<(), String> {
        for lib in libs {
            let inside = lib.to_string_lossy().trim_start_matches('/').to_string();
            self.parents(&inside)
                .map_err(|e| format!("cannot write the initramfs: {e}"))?;
            self.file_from(&inside, lib, 0o755)?;
        }
        Ok(())
    }

    fn file(&mut self, name: &str, data: &[u8], perm: u32) -> std::io::Result<()> {
        self.header(name, 0o100000 | perm, data.len())?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn file_from(&mut self, name: &str, host: &Path, perm: u32) -> Result<(), String> {
        let data =
            std::fs::read(host).map_err(|e| format!("cannot read {}: {e}", host.display()))?;
        if data.len() > u32::MAX as usize {
            return Err(format!("{} is too large for an initramfs", host.display()));
        }
        self.file(name, &data, perm)
            .map_err(|e| format!("cannot write the initramfs: {e}"))
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.header("TRAILER!!!", 0, 0)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn modules_load_after_what_they_depend_on_once_each() {
        let dep = "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
                   kernel/drivers/virtio/virtio_ring.ko:\n\
                   kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
                   kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n";
        let order = module_order(dep, WANTED_MODULES).unwrap();
        let names: Vec<String> = order.iter().map(|m| base(m)).collect();
        assert_eq!(
            names,
            [
                "virtio_ring.ko",
                "virtio.ko",
                "virtio_pci_legacy_dev.ko",
                "virtio_pci.ko",
                "failover.ko",
                "net_failover.ko",
                "virtio_net.ko"
            ]
        );
        let err = module_order("kernel/x.ko:\n", &["virtio_net"]).unwrap_err();
        assert!(err.contains("no module virtio_net"), "{err}");
    }

    #[test]
    fn the_archive_is_newc_that_cpio_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.cpio");
        let mut w = Cpio::new(std::fs::File::create(&out).unwrap());
        w.dir("etc").unwrap();
        w.file("etc/x", b"hello", 0o644).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        if let Ok(listed) = std::process::Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(std::fs::File::open(&out).unwrap())
            .output()
        {
            assert_eq!(String::from_utf8_lossy(&listed.stdout), "etc\netc/x\n");
        }
    }
}
