//! The boss's hob gateway as a capability: the backend that opens a boss makes one, for the
//! boss's state directory, and passes it to what needs it (its providers, their machines,
//! the boss actor, the web observer). Nothing reaches a gateway any other way, so two
//! bosses in one process have one each.
//!
//! Its state is in the boss's persistence registry: its table (`table_store`, the
//! registration and attach actors of each machine) and its node's tcp-tls identity
//! (gobs-ocapn's node vat; an earlier release's `<hob dir>/node` moves in, renamed
//! `node.migrated`). Its node starts when a provider
//! first needs a place machines reach ([`BossGateway::start`]: the first machine created,
//! or a provider with machines after a restart), since it listens only there; revoking a
//! machine's registration does not start it. A read-only command's boss never starts it:
//! what its store would be told is not kept, and an attach rotates a credential.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gobs_ocapn::persist::NodeStore;
use gobs_runtime::{Ref, Registry};

use super::answers::DEFAULT_ANSWER_TIMEOUT;
use super::gateway::{Gateway, ReachListener};
use super::table_store::{Registrations, open_table};

/// The directory of a boss's hob state, in its state directory.
pub const HOB_DIR: &str = "hob";

/// The boss's hob gateway (see the module docs). Cloning gives another handle on the same.
#[derive(Clone)]
pub struct BossGateway {
    shared: Arc<Shared>,
}

struct Shared {
    /// Where earlier releases kept its state (moved into the registry on first use).
    dir: PathBuf,
    registry: Registry,
    /// The boss was opened for a command that only reads: the gateway never starts.
    read_only: bool,
    reach_listener: Option<ReachListener>,
    /// How long a machine may take to answer a call (`[machines] answer_timeout`), in ms.
    answer_timeout_ms: AtomicU64,
    state: Mutex<State>,
    /// Its table, once opened.
    table: Mutex<Option<Ref<Registrations>>>,
}

enum State {
    NotStarted,
    Running(Gateway),
    /// The boss is shutting down: nothing starts it again.
    Stopped,
}

impl std::fmt::Debug for BossGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BossGateway({})", self.shared.dir.display())
    }
}

impl BossGateway {
    /// The gateway of the boss whose persistence registry is `registry` (and whose hob
    /// state from earlier releases is in `dir`), not started; `read_only`: the boss is
    /// opened for a command that only reads, and the gateway never starts.
    /// `reach_listener` is told when a machine's session goes down or comes back, or an
    /// attach to it is refused.
    pub fn new(
        registry: Registry,
        dir: PathBuf,
        read_only: bool,
        reach_listener: Option<ReachListener>,
    ) -> BossGateway {
        BossGateway {
            shared: Arc::new(Shared {
                dir,
                registry,
                read_only,
                reach_listener,
                answer_timeout_ms: AtomicU64::new(millis(DEFAULT_ANSWER_TIMEOUT)),
                state: Mutex::new(State::NotStarted),
                table: Mutex::new(None),
            }),
        }
    }

    /// Sets how long a machine may take to answer a call, beyond what the call's own work
    /// may take (the config's `[machines] answer_timeout`).
    pub fn set_answer_timeout(&self, limit: Duration) {
        let ms = millis(limit).max(1);
        self.shared.answer_timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// How long a machine may take to answer a call, beyond what the call's own work may
    /// take ([`crate::hob_net::answers::wait_answer`]).
    pub fn answer_timeout(&self) -> Duration {
        Duration::from_millis(self.shared.answer_timeout_ms.load(Ordering::Relaxed))
    }

    /// Whether it may start (the boss was not opened for a command that only reads).
    pub fn may_start(&self) -> bool {
        !self.shared.read_only
    }

    /// The running gateway, listening at `listen` too (started first if it was not; port
    /// 0: the port chosen at its first start). Blocking: off the vats.
    pub fn start(&self, listen: SocketAddr) -> Result<Gateway, String> {
        let g = {
            let mut state = self.lock();
            match &*state {
                State::Running(g) => g.clone(),
                State::Stopped => return Err(stopped()),
                State::NotStarted if self.shared.read_only => return Err(read_only()),
                State::NotStarted => {
                    let identity =
                        NodeStore::open(&self.shared.registry, Some(&self.shared.dir.join("node")))
                            .and_then(|node| node.tls())
                            .map_err(|e| format!("cannot open the hob gateway's identity: {e}"))?;
                    let g = Gateway::open(
                        &identity,
                        self.table()?,
                        listen,
                        self.shared.reach_listener.clone(),
                    )?;
                    *state = State::Running(g.clone());
                    g
                }
            }
        };
        g.listen_at(listen)?;
        Ok(g)
    }

    /// The gateway, if it was started (and the boss is not shutting down).
    pub fn running(&self) -> Option<Gateway> {
        match &*self.lock() {
            State::Running(g) => Some(g.clone()),
            State::NotStarted | State::Stopped => None,
        }
    }

    /// The running gateway, or why there is none (for a machine that needs it).
    pub fn required(&self, machine: &str) -> Result<Gateway, String> {
        self.running().ok_or_else(|| {
            format!(
                "the boss's hob gateway is not running, so machine {machine} cannot be \
                 reached; restart the daemon if this lasts"
            )
        })
    }

    /// Revokes machine `machine`'s registration (destroyed, or its creation failed): on
    /// the running gateway, else in its table, without starting it. Blocking: off the vats.
    pub fn revoke(&self, machine: &str) -> Result<(), String> {
        let state = self.lock();
        match &*state {
            State::Running(g) => {
                let g = g.clone();
                drop(state);
                g.revoke(machine)
            }
            _ if self.shared.read_only => Err(read_only()),
            // Held locked, so the gateway does not start from the table meanwhile.
            State::NotStarted | State::Stopped => {
                let m = machine.to_string();
                let cannot = |e: &dyn std::fmt::Display| {
                    format!("cannot revoke machine {machine:?}'s registration: {e}")
                };
                self.table()?
                    .send_mut_with(move |t| t.revoke(&m))
                    .wait()
                    .map_err(|e| cannot(&e))?
                    .map(|_| ())
                    .map_err(|e| cannot(&e))
            }
        }
    }

    /// Its table, opened (and moved in from an earlier release's file) on first use.
    fn table(&self) -> Result<Ref<Registrations>, String> {
        let mut table = self
            .shared
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = &*table {
            return Ok(t.clone());
        }
        let opened = open_table(
            &self.shared.registry,
            &self.shared.dir,
            self.shared.read_only,
        )?;
        *table = Some(opened.clone());
        Ok(opened)
    }

    /// Stops the gateway (the boss is shutting down): its node ends before this returns
    /// (calls in flight fail), and nothing starts it again. Blocking: off the vats.
    pub fn stop(&self) {
        let was = std::mem::replace(&mut *self.lock(), State::Stopped);
        if let State::Running(g) = was {
            g.shutdown();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn read_only() -> String {
    "the boss was opened for a command that only reads, so its hob gateway does not start \
     (machines reach the daemon, or a command that changes something)"
        .to_string()
}

fn stopped() -> String {
    "the boss is shutting down, so its hob gateway does not start again".to_string()
}

#[cfg(test)]
#[path = "boss_gateway_tests.rs"]
mod tests;

fn millis(limit: Duration) -> u64 {
    u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
}
