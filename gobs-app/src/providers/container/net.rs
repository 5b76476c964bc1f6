//! A container's network: a private bridge per provider (made on first use, removed with
//! its last machine) with the host's address `.1` on it, and for each machine a veth pair
//! whose host end joins the bridge and whose other end becomes the container's `eth0`, with
//! the machine's own address and the bridge as its default route.
//!
//! [`bring_up`] makes the bridge, then listens on its address (the boss's machine listener
//! can only bind an address that exists), then makes its firewall ([`super::firewall`]):
//! all before a machine is plugged, and again ([`bring_up_again`]) when the daemon
//! restarts with machines out there. Unless the provider's `isolated` is false, each machine's bridge port is
//! isolated, so machines never reach each other across the bridge.
//!
//! It drives iproute2's `ip` (Debian package `iproute2`); inside the container's network
//! namespace through `setns` before `ip` runs, so nothing needs `nsenter` or named
//! namespaces. Interface names carry a random tag, so two runs (or two state directories)
//! never collide.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::{ContainerSettings, firewall};
use crate::hob_net::Place;
use crate::hob_net::boss_gateway::BossGateway;
use crate::hob_net::gateway::Gateway;

/// Makes the provider's bridge, the boss's listener on it and its firewall (or, with
/// `isolated = false`, no firewall), and makes the ports already on the bridge follow
/// `isolated` (they were plugged before it changed, or before an upgrade): what a restart,
/// or a changed config, does with machines out there.
pub fn bring_up_again(
    settings: &ContainerSettings,
    gateway: &BossGateway,
) -> Result<Gateway, String> {
    let gateway = bring_up(settings, gateway)?;
    for (port, isolated) in bridge_ports(&settings.bridge) {
        if isolated != settings.isolated {
            match isolate_port(&port, settings.isolated) {
                // Its machine was destroyed meanwhile.
                Err(_) if !exists(&port) => {}
                other => other?,
            }
        }
    }
    Ok(gateway)
}

/// Makes the provider's bridge, the boss's listener on it and its firewall (or, with
/// `isolated = false`, no firewall); answers the gateway.
pub fn bring_up(settings: &ContainerSettings, gateway: &BossGateway) -> Result<Gateway, String> {
    let bridge_ip = settings.gateway_ip();
    ensure_bridge(&settings.bridge, bridge_ip)?;
    let listen = Place::Bridge(bridge_ip).fit(settings.hob_listen);
    let gateway = gateway.start(listen)?;
    if settings.isolated {
        firewall::ensure(
            &settings.bridge,
            SocketAddrV4::new(bridge_ip, gateway.port()),
        )?;
    } else {
        firewall::remove(&settings.bridge)?;
    }
    Ok(gateway)
}

/// Removes the provider's bridge, its firewall and the listener on it (the provider's last
/// machine is gone).
pub fn take_down(settings: &ContainerSettings, gateway: &BossGateway) -> Result<(), String> {
    if let Some(g) = gateway.running() {
        g.stop_listening_at(IpAddr::V4(settings.gateway_ip()));
    }
    firewall::remove(&settings.bridge)?;
    remove_bridge(&settings.bridge)
}

/// The interfaces plugged into bridge `bridge`, each with whether it is isolated (none if
/// there is no such bridge). Asked of `ip`, as [`exists`] asks the kernel: `/sys/class/net`
/// lists the network namespace that mounted `/sys`, not always this process's own (an agent
/// started with `nsenter --net` keeps the host's).
fn bridge_ports(bridge: &str) -> Vec<(String, bool)> {
    let Ok(listed) = ip(&["-o", "-d", "link", "show", "master", bridge]) else {
        return Vec::new();
    };
    listed
        .lines()
        .filter_map(|line| {
            // `4: ghX@if3: <…> … bridge_slave … isolated on …`
            let name = line.split(": ").nth(1)?.split('@').next()?;
            Some((name.to_string(), line.contains(" isolated on ")))
        })
        .collect()
}

/// Makes bridge port `port` isolated (`on`) or not: the bridge forwards nothing between
/// two isolated ports, only between them and the host.
fn isolate_port(port: &str, on: bool) -> Result<(), String> {
    let on = if on { "on" } else { "off" };
    ip(&["link", "set", "dev", port, "type", "bridge_slave", "isolated", on]).map(|_| ())
}

/// Runs `ip ARGS` on the host; the error says what failed and what `ip` said.
pub fn ip(args: &[&str]) -> Result<String, String> {
    ip_in(None, args)
}

/// Runs `ip ARGS` in the network namespace of process `pid` (or the host's).
pub fn ip_in(pid: Option<i32>, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    if let Some(pid) = pid {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| format!("cannot open the network namespace of process {pid}: {e}"))?;
        crate::child_fds::exclude(&mut cmd);
        // SAFETY: the closure makes one system call (setns) on a descriptor it owns.
        unsafe {
            cmd.pre_exec(move || {
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&ns),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(std::io::Error::from)
            });
        }
    }
    let out = cmd.output().map_err(|e| {
        format!("cannot run `ip` (install Debian package iproute2): {e}")
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether interface `name` exists in this process's network namespace (asked of the
/// kernel through a socket, not `/sys/class/net`: see [`bridge_ports`]).
pub fn exists(name: &str) -> bool {
    use rustix::net::{AddressFamily, SocketType, netdevice, socket};
    socket(AddressFamily::INET, SocketType::DGRAM, None)
        .and_then(|probe| netdevice::name_to_index(&probe, name))
        .is_ok()
}

/// Makes bridge `bridge` with address `gateway`/24 if it is not there, and brings it up.
pub fn ensure_bridge(bridge: &str, gateway: Ipv4Addr) -> Result<(), String> {
    let [a, b, c, _] = gateway.octets();
    let subnet = format!("{a}.{b}.{c}.0/24");
    let routes = ip(&["-4", "route", "show", &subnet])?;
    if let Some(other) = routes.lines().find(|l| !l.contains(&format!("dev {bridge} "))) {
        return Err(format!(
            "subnet {subnet} is already in use on this host ({}); set `subnet` in the \
             container provider's config to a free /24",
            other.trim()
        ));
    }
    if !exists(bridge) {
        match ip(&["link", "add", bridge, "type", "bridge"]) {
            Ok(_) => {}
            // Another creation made it meanwhile.
            Err(_) if exists(bridge) => {}
            Err(e) => return Err(e),
        }
    }
    let cidr = format!("{gateway}/24");
    let addrs = ip(&["-o", "-4", "addr", "show", "dev", bridge])?;
    if !addrs.contains(&format!(" {cidr} ")) {
        ip(&["addr", "add", &cidr, "dev", bridge]).or_else(|e| {
            if e.contains("File exists") {
                Ok(String::new())
            } else {
                Err(e)
            }
        })?;
    }
    ip(&["link", "set", bridge, "up"])?;
    Ok(())
}

/// Removes bridge `bridge`, if it is there.
fn remove_bridge(bridge: &str) -> Result<(), String> {
    remove_link(bridge)
}

/// Removes interface `name` (a veth's host end takes its peer with it), if it is there.
pub fn remove_link(name: &str) -> Result<(), String> {
    if !exists(name) {
        return Ok(());
    }
    match ip(&["link", "del", name]) {
        Ok(_) => Ok(()),
        Err(_) if !exists(name) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives the container of process `pid` its network: a veth pair `host`/`peer`, `host` on
/// `bridge`, `peer` renamed `eth0` inside with `address`/24 and a default route via
/// `gateway`, and `lo` up; `host`'s bridge port isolated if `isolated`.
pub fn plug(
    pid: i32,
    bridge: &str,
    host: &str,
    peer: &str,
    address: Ipv4Addr,
    gateway: Ipv4Addr,
    isolated: bool,
) -> Result<(), String> {
    let pid_text = pid.to_string();
    ip(&[
        "link", "add", host, "type", "veth", "peer", "name", peer, "netns", &pid_text,
    ])?;
    ip(&["link", "set", host, "master", bridge])?;
    if isolated {
        isolate_port(host, true)?;
    }
    ip(&["link", "set", host, "up"])?;
    let inside = |args: &[&str]| ip_in(Some(pid), args);
    inside(&["link", "set", "lo", "up"])?;
    inside(&["link", "set", peer, "name", "eth0"])?;
    inside(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])?;
    inside(&["link", "set", "eth0", "up"])?;
    inside(&["route", "add", "default", "via", &gateway.to_string()])?;
    Ok(())
}
