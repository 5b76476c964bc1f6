//! The boss's hob gateway as a capability: the backend that opens a boss makes one, for the
//! boss's state directory, and passes it to what needs it (its providers, their machines,
//! the boss actor, the web observer). Nothing reaches a gateway any other way, so two
//! bosses in one process have one each.
//!
//! Its node starts when a provider first needs a place machines reach ([`BossGateway::start`]:
//! the first machine created, or a provider with machines after a restart), since it listens
//! only there. Until then it costs nothing, and revoking a machine's registration edits the
//! gateway's table without starting it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::gateway::{Gateway, ReachListener};
use super::table::revoke_in_file;

/// The directory of a boss's hob state, in its state directory.
pub const HOB_DIR: &str = "hob";

/// The boss's hob gateway (see the module docs). Cloning gives another handle on the same.
#[derive(Clone)]
pub struct BossGateway {
    shared: Arc<Shared>,
}

struct Shared {
    /// Where its state is (its node identity and table).
    dir: PathBuf,
    reach_listener: Option<ReachListener>,
    state: Mutex<State>,
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
    /// The gateway of the boss whose hob state is in `dir`, not started; `reach_listener`
    /// is told when a machine's session goes down or comes back, or an attach to it is
    /// refused.
    pub fn new(dir: PathBuf, reach_listener: Option<ReachListener>) -> BossGateway {
        BossGateway {
            shared: Arc::new(Shared {
                dir,
                reach_listener,
                state: Mutex::new(State::NotStarted),
            }),
        }
    }

    /// Where its state is.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The running gateway, listening at `listen` too (started first if it was not; port
    /// 0: the port chosen at its first start). Blocking: off the vats.
    pub fn start(&self, listen: SocketAddr) -> Result<Gateway, String> {
        let g = {
            let mut state = self.lock();
            match &*state {
                State::Running(g) => g.clone(),
                State::Stopped => return Err(stopped()),
                State::NotStarted => {
                    let g = Gateway::open(
                        &self.shared.dir,
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
    /// the running gateway, else in its table, without starting it.
    pub fn revoke(&self, machine: &str) -> Result<(), String> {
        let state = self.lock();
        match &*state {
            State::Running(g) => {
                let g = g.clone();
                drop(state);
                g.revoke(machine)
            }
            // Held locked, so the gateway does not start from the table meanwhile.
            State::NotStarted | State::Stopped => revoke_in_file(&self.shared.dir, machine),
        }
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

fn stopped() -> String {
    "the boss is shutting down, so its hob gateway does not start again".to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::hob_net::gateway::Reach;
    use crate::hob_net::table::{RegState, read_table, table_path};

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn two_bosses_in_one_process_have_a_gateway_each() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let b1 = BossGateway::new(d1.path().to_path_buf(), None);
        let b2 = BossGateway::new(d2.path().to_path_buf(), None);
        assert!(
            b1.running().is_none(),
            "nothing starts it before it is needed"
        );
        let g1 = b1.start(loopback()).unwrap();
        let g2 = b2.start(loopback()).unwrap();
        assert_ne!(g1.port(), g2.port());
        g1.issue("m1", "127.0.0.1").unwrap();
        assert_eq!(g1.reach("m1"), Some(Reach::Waiting));
        assert_eq!(g2.reach("m1"), None, "the other boss knows nothing of m1");
        assert_eq!(b1.running().unwrap().port(), g1.port());
    }

    #[test]
    fn revoking_before_the_gateway_started_edits_its_table_and_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let before = BossGateway::new(dir.path().to_path_buf(), None);
        before
            .start(loopback())
            .unwrap()
            .issue("m1", "127.0.0.1")
            .unwrap();
        before.stop();
        // The boss restarted; its gateway has not been needed yet.
        let after = BossGateway::new(dir.path().to_path_buf(), None);
        after.revoke("m1").unwrap();
        assert!(after.running().is_none());
        let table = read_table(&table_path(dir.path())).unwrap();
        assert!(table.machines.is_empty());
        assert_eq!(table.spent.len(), 1);
        assert_eq!(table.spent[0].machine, "m1");
        assert_eq!(table.spent[0].state, RegState::Revoked);
        // Revoking what it does not know (or knows no more) is nothing to do.
        after.revoke("m1").unwrap();
        assert_eq!(read_table(&table_path(dir.path())).unwrap().spent.len(), 1);
    }

    #[test]
    fn a_stopped_gateway_frees_its_port_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let before = BossGateway::new(dir.path().to_path_buf(), None);
        let port = before.start(loopback()).unwrap().port();
        before.stop();
        // The boss opened again in the same process: the kept port is free already.
        let after = BossGateway::new(dir.path().to_path_buf(), None);
        assert_eq!(after.start(loopback()).unwrap().port(), port);
    }

    #[test]
    fn a_stopped_gateway_does_not_start_again() {
        let dir = tempfile::tempdir().unwrap();
        let b = BossGateway::new(dir.path().to_path_buf(), None);
        b.start(loopback()).unwrap();
        b.stop();
        assert!(b.running().is_none());
        let e = b.start(loopback()).unwrap_err();
        assert!(e.contains("shutting down"), "{e}");
    }
}
