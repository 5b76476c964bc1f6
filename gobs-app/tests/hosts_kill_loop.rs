//! Crash safety across hosts: `kill -9` at random instants of the boss's daemon and of host
//! agents while two clients create and destroy machines on the hosts. After every restart,
//! once every host is reachable again: each acknowledged machine is listed on its host and
//! runs a command, each acknowledged destroy is gone from the boss and from its host, nothing
//! stays creating or destroying, no host keeps a machine the boss does not know (a half-made
//! leftover), and destroying what a kill interrupted works. At the end, destroying every
//! machine leaves every host empty.
//!
//! Hosts are `gobs-app agent`s on loopback (no root needed) and machines are dummies, so
//! the kills land in the boss's and the agents' own bookkeeping, which is what is tested.
//! Prints `kills / acks / lost / leftovers` and requires 0 lost and 0 leftovers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::fleet::Agent;
use common::rng::Rng;
use common::{Daemon, HANG, gobs, listed, ok, state, text, wait_for};
use tempfile::TempDir;

const KILLS: u64 = 30;
const HOSTS: usize = 2;

/// What the clients were told.
#[derive(Default)]
struct Acks {
    /// Acknowledged creates not destroyed since: name → host.
    live: BTreeMap<String, String>,
    /// Acknowledged destroys.
    gone: BTreeSet<String>,
    /// Commands cut short (no answer came back): they may or may not have happened.
    unsure: BTreeSet<String>,
    count: u64,
}

/// The boss and its hosts, each a child killed when dropped.
struct Fleet {
    boss: TempDir,
    daemon: Option<Daemon>,
    dirs: Vec<TempDir>,
    agents: Vec<Option<Agent>>,
}

impl Fleet {
    /// A boss with `HOSTS` hosts `h0`, `h1` … enrolled and reachable.
    fn new() -> Fleet {
        let boss = state();
        let daemon = Daemon::start(boss.path());
        let (mut dirs, mut agents) = (Vec::new(), Vec::new());
        for i in 0..HOSTS {
            let json = ok(boss.path(), &["host", "add", &host(i), "--json"]);
            let json: serde_json::Value = serde_json::from_str(&json).unwrap();
            let uri = json["enrolment"].as_str().unwrap().to_string();
            let dir = state();
            let args = ["--listen", "127.0.0.1:0", "--join", uri.as_str()];
            agents.push(Some(Agent::start(dir.path(), None, &args).unwrap()));
            dirs.push(dir);
        }
        let fleet = Fleet {
            boss,
            daemon: Some(daemon),
            dirs,
            agents,
        };
        fleet.wait_reachable();
        fleet
    }

    fn boss(&self) -> &Path {
        self.boss.path()
    }

    /// Kills the daemon (`None`) or host `i`'s agent with SIGKILL.
    fn kill(&mut self, which: Option<usize>) {
        match which {
            None => drop(self.daemon.take()),
            Some(i) => self.agents[i].take().unwrap().kill(),
        }
    }

    /// Starts again what [`Fleet::kill`] killed (an agent needs no flags: it kept them),
    /// and waits until the boss reaches every host.
    fn restart(&mut self) {
        if self.daemon.is_none() {
            self.daemon = Some(Daemon::start(self.boss.path()));
        }
        for (agent, dir) in self.agents.iter_mut().zip(&self.dirs) {
            if agent.is_none() {
                let started = Agent::start(dir.path(), None, &[]);
                *agent = Some(started.unwrap_or_else(|e| panic!("an agent did not open: {e}")));
            }
        }
        self.wait_reachable();
    }

    fn wait_reachable(&self) {
        wait_for("every host to be reachable", || {
            let json = ok(self.boss(), &["hosts", "--json"]);
            let hosts: serde_json::Value = serde_json::from_str(&json).unwrap();
            hosts
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["state"] == "reachable")
        });
    }

    /// The boss's `list-machines`, once nothing is creating or destroying any more:
    /// name → (host, status).
    fn settled(&self) -> BTreeMap<String, (String, String)> {
        let mut listed_now = BTreeMap::new();
        wait_for("the machines to settle after a restart", || {
            listed_now = listed(self.boss())
                .iter()
                .map(|m| {
                    let name = m["name"].as_str().unwrap().to_string();
                    let host = m["host"].as_str().unwrap_or("local").to_string();
                    (name, (host, m["status"].as_str().unwrap().to_string()))
                })
                .collect();
            listed_now
                .values()
                .all(|(_, status)| status != "creating" && status != "destroying")
        });
        listed_now
    }

    /// The machines host `i`'s agent keeps, asked through its own socket.
    fn on_host(&self, i: usize) -> BTreeSet<String> {
        listed(self.dirs[i].path())
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Checks the invariants (see the module's doc); returns (lost, leftovers). Destroys
    /// machines whose creation or destruction a kill interrupted.
    fn check(&self, acks: &mut Acks) -> (u64, u64) {
        let listed = self.settled();
        let mut lost = 0;
        for (name, host) in &acks.live.clone() {
            match listed.get(name) {
                Some((on, status)) if on == host && status == "running" => {}
                // Its destroy was cut short: gone, or failed ("the agent no longer has it").
                None if acks.unsure.contains(name) => {
                    acks.live.remove(name);
                }
                Some((_, status)) if acks.unsure.contains(name) && status == "failed" => {}
                other => {
                    lost += 1;
                    eprintln!("LOST: acknowledged machine {name} on {host} is {other:?}");
                }
            }
        }
        let mut leftovers = 0;
        for i in 0..HOSTS {
            for name in self.on_host(i) {
                let known = listed.get(&name).is_some_and(|(on, _)| *on == host(i));
                if !known {
                    leftovers += 1;
                    eprintln!(
                        "LEFTOVER: host {} keeps {name}, which the boss does not list",
                        host(i)
                    );
                }
                assert!(
                    !acks.gone.contains(&name),
                    "destroyed {name} is still on its host"
                );
            }
        }
        for name in &acks.gone {
            assert!(
                !listed.contains_key(name),
                "acknowledged destroy of {name}, yet it is listed"
            );
        }
        // Every host's machines answer.
        let mut asked = BTreeSet::new();
        for (name, host) in &acks.live {
            if !acks.unsure.contains(name) && asked.insert(host.clone()) {
                let out = ok(self.boss(), &["run", name, "--", "echo", "alive"]);
                assert!(out.contains("alive"), "run {name}: {out}");
            }
        }
        // What a kill interrupted can be destroyed.
        for (name, (_, status)) in &listed {
            let acked_running = acks.live.contains_key(name) && status == "running";
            if !acked_running {
                let out = gobs(self.boss(), &["destroy-machine", name]);
                assert!(
                    out.status.success(),
                    "destroying interrupted machine {name} ({status}): {}",
                    text(&out.stderr)
                );
                acks.live.remove(name);
                acks.gone.insert(name.clone());
            }
        }
        acks.unsure.clear();
        (lost, leftovers)
    }
}

fn host(i: usize) -> String {
    format!("h{i}")
}

/// Creates machines on the hosts in turn, destroying every other one, until `stop`;
/// returns how many of its commands got no answer.
fn client(
    c: usize,
    round: u64,
    boss: &Path,
    acks: &Mutex<Acks>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> u64 {
    let (mut i, mut unanswered) = (0, 0);
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let (name, on) = (format!("m{c}-{round}-{i}"), host((c + i) % HOSTS));
        acks.lock().unwrap().unsure.insert(name.clone());
        sent.fetch_add(1, Ordering::SeqCst);
        let out = gobs(boss, &["create-machine", &name, "--host", &on]);
        unanswered += u64::from(!out.status.success());
        if !out.status.success() {
            continue;
        }
        let mut a = acks.lock().unwrap();
        a.unsure.remove(&name);
        a.live.insert(name.clone(), on);
        a.count += 1;
        if i % 2 == 0 {
            a.unsure.insert(name.clone());
            drop(a);
            sent.fetch_add(1, Ordering::SeqCst);
            let out = gobs(boss, &["destroy-machine", &name]);
            unanswered += u64::from(!out.status.success());
            if out.status.success() {
                let mut a = acks.lock().unwrap();
                a.unsure.remove(&name);
                a.live.remove(&name);
                a.gone.insert(name);
                a.count += 1;
            }
        }
    }
    unanswered
}

#[test]
fn boss_and_agents_killed_at_random_during_creates_and_destroys() {
    let mut fleet = Fleet::new();
    let mut rng = Rng::new();
    let acks = Arc::new(Mutex::new(Acks::default()));
    let (mut lost, mut leftovers, mut mid_command) = (0u64, 0u64, 0u64);
    let mut killed = [0u64; HOSTS + 1];
    for round in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..2)
            .map(|c| {
                let (boss, acks) = (fleet.boss().to_path_buf(), acks.clone());
                let (stop, sent) = (stop.clone(), sent.clone());
                thread::spawn(move || client(c, round, &boss, &acks, &stop, &sent))
            })
            .collect();
        // The kill comes at a random instant once the clients are at work: after 1 to 6 of
        // their commands went out, then 0 to 100 ms more.
        let wait_sent = 1 + rng.below(6);
        let started = Instant::now();
        while sent.load(Ordering::SeqCst) < wait_sent {
            assert!(
                started.elapsed() < HANG,
                "the clients sent nothing in {HANG:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_micros(rng.below(100_000)));
        // The boss, then each agent, in turn.
        let which = (round as usize % (HOSTS + 1)).checked_sub(1);
        fleet.kill(which);
        killed[which.map_or(0, |i| i + 1)] += 1;
        stop.store(true, Ordering::SeqCst);
        let unanswered: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
        mid_command += u64::from(unanswered > 0);
        fleet.restart();
        let (l, left) = fleet.check(&mut acks.lock().unwrap());
        (lost, leftovers) = (lost + l, leftovers + left);
    }

    // Destroying every machine leaves every host empty.
    for name in fleet.settled().keys() {
        ok(fleet.boss(), &["destroy-machine", name]);
    }
    assert!(listed(fleet.boss()).is_empty());
    for i in 0..HOSTS {
        let kept = fleet.on_host(i);
        assert!(
            kept.is_empty(),
            "host {} keeps {kept:?} after all were destroyed",
            host(i)
        );
    }
    let acks = acks.lock().unwrap().count;
    eprintln!(
        "hosts: {KILLS} kills (boss {}, agents {:?}; {mid_command} cut a command short) / \
         {acks} acks / {lost} lost / {leftovers} leftovers",
        killed[0],
        &killed[1..]
    );
    assert!(acks > 0, "no command was ever acknowledged");
    assert_eq!((lost, leftovers), (0, 0));
    assert!(
        mid_command >= KILLS / 3,
        "only {mid_command} of {KILLS} kills cut a command short"
    );
}
