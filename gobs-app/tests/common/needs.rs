//! What the tests of each provider that needs the machine's privileges need of it, one list
//! each, so every test of a provider asks the same ([`gobs_testkit::need`]).

use gobs_testkit::Need;

/// A container machine: namespaces, a cgroup, busybox, iproute2 and nftables, as root.
pub const CONTAINER: &[Need] = &[
    Need::Root,
    Need::Namespaces,
    Need::CgroupWrite,
    Need::File("/bin/busybox", "apt-get install busybox-static"),
    Need::Command("ip", "iproute2"),
    Need::Command("ldd", "libc-bin"),
    Need::Command("nft", "nftables"),
];

/// A qemu machine: qemu, a kernel to boot and busybox for its initramfs, as root.
pub const QEMU: &[Need] = &[
    Need::Root,
    Need::Command("qemu-system-x86_64", "qemu-system-x86"),
    Need::BootKernel,
    Need::File("/bin/busybox", "apt-get install busybox-static"),
    Need::Command("ldd", "libc-bin"),
];

/// A rootless container made by an unprivileged user (`nobody`, through runuser as root):
/// user namespaces for users, busybox and pasta.
pub const ROOTLESS_CONTAINER: &[Need] = &[
    Need::Root,
    Need::Command("runuser", "util-linux"),
    Need::UnprivilegedUserNamespaces,
    Need::File("/bin/busybox", "apt-get install busybox-static"),
    Need::Command("pasta", "passt"),
    Need::Command("ldd", "libc-bin"),
];
