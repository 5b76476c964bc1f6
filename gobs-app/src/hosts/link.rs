//! [`FleetLink`]: the boss's link to its hosts. It holds the [`Fleet`] (restored if the
//! boss has one, made by the first `host add`), the boss's fleet node (tcp-tls, opened
//! from the boss's registry, listening where `[hosts] listen` says), and a watcher that
//! pings each joined agent every [`PING_PERIOD`]: a host whose agent does not answer
//! within [`PING_LIMIT`] is `unreachable` from then on, and `reachable` again at its next
//! answer. The boss dials the agents (their references name where they listen), so a
//! restart of either side heals by itself: the next ping reaches the agent again.
//!
//! A command that only reads opens no node and pings nothing: it shows the hosts as
//! `unknown`. The node and the watcher run outside the vats; blocking calls here must not
//! be made from a vat's turn.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gobs_ocapn::captp::{DuplicateSession, SessionConfig};
use gobs_ocapn::node::Node;
use gobs_ocapn::persist::NodeStore;
use gobs_runtime::{Promise, Ref, Registry, spawn};

use super::fleet::{Enrolment, FLEET_VAT, Fleet};
use super::model::now_unix;
use crate::actors::boss::Boss;
use crate::config::hosts::HostsConfig;
use crate::hob_net::boss_gateway::HOB_DIR;
use crate::model::BackendError;

/// How often the watcher pings each joined agent.
pub const PING_PERIOD: Duration = Duration::from_secs(1);

/// How long an agent has to answer a ping before its host is `unreachable`.
pub const PING_LIMIT: Duration = Duration::from_secs(3);

/// How a joined host answered its pings: up or down, since then (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// Whether it answered the last ping.
    pub up: bool,
    /// Since when.
    pub since: u64,
}

/// The boss's link to its hosts (see the module docs). Cloning gives another handle.
#[derive(Clone)]
pub struct FleetLink {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    registry: Registry,
    /// The boss's state directory (where an earlier release kept the node's identity).
    dir: std::path::PathBuf,
    config: HostsConfig,
    read_only: bool,
    pub(super) boss: Ref<Boss>,
    state: Mutex<State>,
    pub(super) reach: Mutex<BTreeMap<String, Reach>>,
    /// Machines whose creation this process is waiting for.
    pub(super) creating: Mutex<std::collections::BTreeSet<String>>,
    /// Wakes the watcher (to stop it).
    wake: Condvar,
}

#[derive(Default)]
enum State {
    /// No fleet yet (no host was ever added), or a read-only boss's fleet.
    #[default]
    Idle,
    ReadOnly(Ref<Fleet>),
    Running(Running),
    Stopped,
}

struct Running {
    fleet: Ref<Fleet>,
    node: Node,
    runtime: Driven,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FleetLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FleetLink({})", self.shared.config.listen)
    }
}

impl FleetLink {
    /// The link of the boss `boss` kept in `registry` (state directory `dir`): its fleet
    /// is restored, and its node started, if it has one. `read_only`: a command that only
    /// reads, which starts nothing.
    pub fn open(
        registry: &Registry,
        dir: &Path,
        boss: Ref<Boss>,
        config: &HostsConfig,
        read_only: bool,
    ) -> Result<FleetLink, BackendError> {
        let link = FleetLink {
            shared: Arc::new(Shared {
                registry: registry.clone(),
                dir: dir.to_path_buf(),
                config: config.clone(),
                read_only,
                boss,
                state: Mutex::new(State::Idle),
                reach: Mutex::new(BTreeMap::new()),
                creating: Mutex::new(Default::default()),
                wake: Condvar::new(),
            }),
        };
        if registry.vat_names().iter().any(|n| n == FLEET_VAT) {
            link.started()?;
        }
        Ok(link)
    }

    /// The fleet, if the boss has one.
    pub(super) fn fleet(&self) -> Option<Ref<Fleet>> {
        match &*self.lock() {
            State::ReadOnly(fleet) => Some(fleet.clone()),
            State::Running(running) => Some(running.fleet.clone()),
            State::Idle | State::Stopped => None,
        }
    }

    /// The fleet, made (and its node started) if the boss has none yet.
    pub(super) fn started(&self) -> Result<Ref<Fleet>, BackendError> {
        let mut state = self.lock();
        match &*state {
            State::ReadOnly(fleet) => return Ok(fleet.clone()),
            State::Running(running) => return Ok(running.fleet.clone()),
            State::Stopped => {
                return Err(BackendError::internal(
                    "the boss is shutting down; its hosts are no longer served",
                ));
            }
            State::Idle => {}
        }
        let (_, fleet) = self
            .shared
            .registry
            .start_vat(FLEET_VAT, || spawn(Fleet::new()))
            .map_err(|e| BackendError::storage(format!("cannot open the fleet's vat: {e}")))?;
        if self.shared.read_only {
            *state = State::ReadOnly(fleet.clone());
            return Ok(fleet);
        }
        let (node, runtime) = self.listen()?;
        let watcher = {
            let link = self.clone();
            std::thread::Builder::new()
                .name("gobs-fleet-watch".into())
                .spawn(move || link.watch())
                .map_err(|e| BackendError::internal(format!("cannot start the watcher: {e}")))?
        };
        *state = State::Running(Running {
            fleet: fleet.clone(),
            node,
            runtime,
            watcher: Some(watcher),
        });
        Ok(fleet)
    }

    /// Starts the fleet node, listening where the config says.
    fn listen(&self) -> Result<(Node, Driven), BackendError> {
        let config = &self.shared.config;
        let fail = |e: String| {
            BackendError::internal(format!(
                "cannot listen for host agents at {} ([hosts] listen in the config): {e}",
                config.listen
            ))
        };
        // The node shares its identity with the hob gateway's: an earlier release's file
        // moves in first, whichever of the two starts first.
        NodeStore::open(
            &self.shared.registry,
            Some(&self.shared.dir.join(HOB_DIR).join("node")),
        )
        .map_err(|e| fail(e.to_string()))?;
        let mut builder = Node::open(&self.shared.registry)
            .map_err(|e| fail(e.to_string()))?
            .session_config(SessionConfig {
                // An agent that died without closing its connection comes back with the
                // same identity: believe the new session.
                duplicate_session: DuplicateSession::ReplaceOld,
                ..SessionConfig::default()
            });
        if let Some(host) = &config.public_host {
            builder = builder.public_host(host.clone());
        }
        let runtime = Driven::start().map_err(fail)?;
        let addr = config.listen.to_string();
        let node = runtime
            .handle
            .block_on(builder.listen_tls(&addr))
            .map_err(|e| fail(e.to_string()))?;
        tracing::info!(locator = %node.locator().to_uri(), "listening for host agents");
        Ok((node, runtime))
    }

    /// Publishes host `host`'s enrolment: its URI.
    pub(super) fn publish(
        &self,
        host: &str,
        enrolment: &Ref<Enrolment>,
    ) -> Result<String, BackendError> {
        self.publish_as(
            &format!("enrolment/{host}"),
            enrolment,
            &format!("host {host}'s enrolment"),
        )
    }

    /// Publishes `actor` on the boss's node (started if it is not yet) under a new name
    /// beginning with `name`: its URI. `what` names it for errors.
    pub(crate) fn publish_as<T: gobs_runtime::Actor>(
        &self,
        name: &str,
        actor: &Ref<T>,
        what: &str,
    ) -> Result<String, BackendError> {
        self.started()?;
        let state = self.lock();
        let State::Running(running) = &*state else {
            return Err(BackendError::internal(format!(
                "the boss's node is not running (a command that only reads cannot publish \
                 {what})"
            )));
        };
        let name = format!("{name}/{}", unique_suffix());
        let published = running
            .runtime
            .handle
            .block_on(running.node.publish(&name, actor))
            .map_err(|e| BackendError::storage(format!("cannot publish {what}: {e}")))?;
        Ok(published.to_uri())
    }

    /// How host `host` answered its pings, if it was pinged.
    pub(super) fn reach(&self, host: &str) -> Option<Reach> {
        self.shared
            .reach
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .copied()
    }

    /// Whether this process pings agents (a daemon, or a command that writes).
    pub(super) fn watching(&self) -> bool {
        matches!(&*self.lock(), State::Running(_))
    }

    /// Stops the watcher and the node. Idempotent.
    pub fn stop(&self) {
        let old = std::mem::replace(&mut *self.lock(), State::Stopped);
        self.shared.wake.notify_all();
        if let State::Running(mut running) = old {
            if let Some(watcher) = running.watcher.take() {
                let _ = watcher.join();
            }
            running.runtime.stop();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The watcher's loop (see the module docs), until [`FleetLink::stop`].
    fn watch(&self) {
        loop {
            let Some(fleet) = self.fleet() else { return };
            let agents = match fleet.send().hosts().wait_timeout(PING_LIMIT) {
                Ok(Ok(hosts)) => hosts
                    .into_iter()
                    .filter_map(|(name, h)| h.agent.map(|a| (name, a)))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            };
            let deadline = Instant::now() + PING_LIMIT;
            let pings: Vec<(String, Promise<u64>)> = agents
                .into_iter()
                .map(|(name, agent)| (name, agent.send().ping()))
                .collect();
            for (name, ping) in pings {
                let left = deadline.saturating_duration_since(Instant::now());
                let up = matches!(ping.wait_timeout(left), Ok(Ok(_)));
                self.note(&name, up);
            }
            let state = self.lock();
            if matches!(&*state, State::Stopped) {
                return;
            }
            let (state, _) = self
                .shared
                .wake
                .wait_timeout(state, PING_PERIOD)
                .unwrap_or_else(|e| e.into_inner());
            if matches!(&*state, State::Stopped) {
                return;
            }
        }
    }

    /// Host `host` answered (`up`) or did not.
    fn note(&self, host: &str, up: bool) {
        let mut reach = self.shared.reach.lock().unwrap_or_else(|e| e.into_inner());
        let changed = reach.get(host).is_none_or(|r| r.up != up);
        if changed {
            match up {
                true => tracing::info!(host, "host is reachable"),
                false => tracing::warn!(host, "host is unreachable"),
            }
            reach.insert(
                host.to_string(),
                Reach {
                    up,
                    since: now_unix(),
                },
            );
        }
    }
}

/// A current-thread tokio runtime, driven by a thread of its own until stopped.
pub(crate) struct Driven {
    pub(crate) handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Driven {
    /// Starts the runtime and its thread.
    pub(crate) fn start() -> Result<Driven, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("gobs-fleet".into())
            .spawn(move || {
                // Ends (an error) when the sender is dropped.
                let _ = runtime.block_on(stopped);
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|e| format!("cannot start the runtime's thread: {e}"))?;
        Ok(Driven {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the runtime (its tasks end) and waits for its thread. Idempotent.
    pub(super) fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A suffix no other enrolment's published name has.
fn unique_suffix() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("{}", now_unix());
    }
    data_encoding::HEXLOWER.encode(&bytes)
}
