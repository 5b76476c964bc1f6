//! A qemu guest's network: qemu's user-mode network with `restrict=on`, so the guest
//! reaches nothing of the host (not 10.0.2.2, so not the host's loopback) and nothing
//! beyond it; the one way out is a `guestfwd` from [`BOSS_FROM_GUEST`] on the listener's
//! port to the boss's listener on loopback. The forward runs a relay (`busybox nc`, the
//! busybox the initramfs is made from) per connection, so the guest's hob-client can
//! connect again after a lost session or a boss restart; a forward to a chardev would
//! carry one connection for the VM's whole life.

use std::net::SocketAddr;
use std::path::Path;

/// The boss as the guest dials it: an address on qemu's user-mode network that qemu
/// forwards (not 10.0.2.2, the host, which restricted mode cuts off and qemu does not
/// let a forward take).
pub const BOSS_FROM_GUEST: &str = "10.0.2.100";

/// qemu's arguments for the guest's network card and its restricted user-mode network,
/// forwarding [`BOSS_FROM_GUEST`]`:PORT` to `boss` (the listener on loopback) through
/// `busybox nc`.
pub fn args(busybox: &Path, boss: SocketAddr) -> Vec<String> {
    // qemu's option syntax escapes a comma by doubling it.
    let busybox = busybox.display().to_string().replace(',', ",,");
    let relay = format!("{busybox} nc {} {}", boss.ip(), boss.port());
    vec![
        "-netdev".to_owned(),
        format!(
            "user,id=n0,restrict=on,guestfwd=tcp:{BOSS_FROM_GUEST}:{}-cmd:{relay}",
            boss.port()
        ),
        "-device".to_owned(),
        "virtio-net-pci,netdev=n0".to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_guest_reaches_only_the_boss_through_a_relay_per_connection() {
        let a = args(Path::new("/bin/busybox"), "127.0.0.1:7731".parse().unwrap());
        assert_eq!(
            a[1],
            "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:7731-cmd:/bin/busybox nc 127.0.0.1 7731"
        );
        assert_eq!(a[3], "virtio-net-pci,netdev=n0");
        let a = args(Path::new("/opt/a,b/busybox"), "127.0.0.1:1".parse().unwrap());
        assert!(a[1].ends_with("cmd:/opt/a,,b/busybox nc 127.0.0.1 1"), "{}", a[1]);
    }
}
