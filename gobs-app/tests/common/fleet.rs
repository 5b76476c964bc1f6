//! Hosts for the fleet tests: `gobs-app agent` children, and hosts as network namespaces
//! on a test bridge ([`Net`]), all removed when dropped, also when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::{bare, drain_until};

/// A `gobs-app agent` child (in network namespace `netns`, if any); killed when dropped.
pub struct Agent {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    /// Starts `gobs-app --state-dir state agent ARGS…`; returns once it serves, or with
    /// its stderr once it exited.
    pub fn start(state: &Path, netns: Option<&str>, args: &[&str]) -> Result<Agent, String> {
        let mut cmd = match netns {
            // nsenter enters the network namespace only: `ip netns exec` would also mount
            // a sysfs of its own, hiding /sys/fs/cgroup from the agent's containers.
            Some(ns) => {
                let mut cmd = Command::new("nsenter");
                cmd.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg(super::bin());
                for (key, value) in bare().get_envs() {
                    match value {
                        Some(v) => cmd.env(key, v),
                        None => cmd.env_remove(key),
                    };
                }
                cmd
            }
            None => bare(),
        };
        let mut child = cmd
            .arg("--state-dir")
            .arg(state)
            .arg("agent")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let serves = |line: &str| line.contains("daemon (pid") && line.contains("serving");
        let (stderr, served, _drain) = drain_until(&mut child, serves);
        let mut agent = Agent {
            child: Some(child),
            stderr,
        };
        if !served {
            let child = agent.child.as_mut().unwrap();
            let _ = child.kill();
            let _ = child.wait();
            return Err(agent.stderr());
        }
        Ok(agent)
    }

    /// What it wrote on standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A test bridge in this namespace at `<prefix>.1/24`, and one network namespace per host,
/// each with a veth on the bridge at `<prefix>.(10 + i)`. Names carry the pid and a count,
/// so no two runs collide; dropping it removes every one.
pub struct Net {
    tag: String,
    prefix: [u8; 3],
    hosts: usize,
}

impl Net {
    /// A bridge and `hosts` namespaces, in a /24 no address or route here uses.
    pub fn new(hosts: usize) -> Net {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{:x}{n}", pid & 0xff_ffff);
        let used = [
            run_out("ip", &["-4", "-o", "addr"]),
            run_out("ip", &["-4", "route"]),
        ]
        .concat();
        let prefix = (0..250u32)
            .map(|k| {
                let second = 100 + ((pid >> 8) + n + k) % 100;
                let third = (pid + k * 7) % 250 + 1;
                [10, second as u8, third as u8]
            })
            .find(|p| !used.contains(&format!("10.{}.{}.", p[1], p[2])))
            .expect("a free 10.x.y.0/24");
        let net = Net {
            tag,
            prefix,
            hosts: 0,
        };
        let mut net = net;
        let bridge = net.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"]);
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", net.boss_ip()),
                "dev",
                &bridge,
            ],
        );
        run("ip", &["link", "set", &bridge, "up"]);
        for i in 0..hosts {
            net.hosts = i + 1;
            let (ns, outside, inside) = (net.netns(i), net.veth(i), format!("gp{}h{i}", net.tag));
            run("ip", &["netns", "add", &ns]);
            run(
                "ip",
                &[
                    "link", "add", &outside, "type", "veth", "peer", "name", &inside,
                ],
            );
            run("ip", &["link", "set", &outside, "master", &bridge]);
            run("ip", &["link", "set", &outside, "up"]);
            run("ip", &["link", "set", &inside, "netns", &ns]);
            let exec = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &ns, "ip"];
                all.extend(args);
                run("ip", &all);
            };
            exec(&[
                "addr",
                "add",
                &format!("{}/24", net.host_ip(i)),
                "dev",
                &inside,
            ]);
            exec(&["link", "set", &inside, "up"]);
            exec(&["link", "set", "lo", "up"]);
        }
        net
    }

    /// The bridge's address, where the boss listens for agents.
    pub fn boss_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix[0], self.prefix[1], self.prefix[2], 1)
    }

    /// Host `i`'s address.
    pub fn host_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix[0], self.prefix[1], self.prefix[2], 10 + i as u8)
    }

    /// Host `i`'s namespace.
    pub fn netns(&self, i: usize) -> String {
        format!("gobs-fleet-{}-h{i}", self.tag)
    }

    /// Takes host `i`'s link down (a partition) or up again.
    pub fn link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        run("ip", &["link", "set", &self.veth(i), state]);
    }

    fn bridge(&self) -> String {
        format!("gb{}", self.tag)
    }

    fn veth(&self, i: usize) -> String {
        format!("gv{}h{i}", self.tag)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.hosts {
            let _ = quiet("ip", &["link", "del", &self.veth(i)]);
            let _ = quiet("ip", &["netns", "del", &self.netns(i)]);
        }
        let _ = quiet("ip", &["link", "del", &self.bridge()]);
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_out(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn quiet(cmd: &str, args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
}
