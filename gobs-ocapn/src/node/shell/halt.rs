//! How a node stops for good while handles to it may still live: when its owner stops it
//! ([`Node::stop`]), when the tokio runtime that ran its tasks shuts down, or when its
//! core panicked.
//!
//! Handles outlive a node's runtime easily: an object of its own may hold one (a
//! hob-client's bindings do), a far reference passed to a vat does, a message waiting in
//! the core for a peer's answer does — so the node's last handle is no signal that it has
//! stopped. Its runtime shutting down is: no task reads its connections any more. Left
//! open, a connection would take whatever its peer sends and never answer, and the peer
//! would wait for ever on a session it believes open. So the node halts: it closes every
//! connection (its peer sees the session end and asks elsewhere), stops its netlayers
//! listening (closing what they accepted that the node had not taken), tells its core each
//! session is lost (what waited on one breaks with the reason), and lets go of what the
//! core held (whatever waits on the node is answered [`super::NodeStopped`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{PoisonError, Weak};

use super::host::Host;
use super::{Node, Shared};
use crate::captp::{ConnId, SessionConfig};
use crate::node::Core;

/// Why a node whose runtime shut down stopped, as its sessions' broken promises say.
pub(super) const RUNTIME_GONE: &str = "the node stopped: the tokio runtime that ran it shut down";

/// Why a node whose core panicked stopped.
pub(super) const CORE_PANICKED: &str = "the node stopped: its core panicked";

/// Why a node its owner stopped stopped.
pub(super) const STOPPED: &str = "the node was stopped by its owner";

impl Node {
    /// Stops the node for good, as when the tokio runtime that runs it shuts down: it
    /// closes its connections (each peer sees its session end), stops listening, breaks
    /// whatever waits on a session, and answers its handles [`NodeStopped`](super::NodeStopped) from then
    /// on. From anywhere, the node's own objects included: a thread running the node's
    /// core at that moment halts it at the end of what it runs.
    pub fn stop(&self) {
        self.shared.stop_asked.store(true, Ordering::Release);
        // A section halts it: this one if the core is free, else the holder's.
        self.shared.post(Box::new(|_| {}));
    }
}

/// Halts the node ([`Shared::halt`]) when the task holding it is dropped unfinished: what
/// happens to a node's tasks when its runtime shuts down.
pub(super) struct RuntimeWatch {
    shared: Weak<Shared>,
    armed: bool,
}

impl RuntimeWatch {
    pub(super) fn new(shared: Weak<Shared>) -> RuntimeWatch {
        RuntimeWatch {
            shared,
            armed: true,
        }
    }

    /// The task ended by itself (the node is gone or stopped already).
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for RuntimeWatch {
    fn drop(&mut self) {
        if self.armed
            && let Some(shared) = self.shared.upgrade()
        {
            shared.halt(RUNTIME_GONE);
        }
    }
}

impl Shared {
    /// Stops the node for good, saying `why` (see the module docs). Never from inside the
    /// core: it takes the core's lock (see [`Shared::halt_held`]).
    pub(super) fn halt(&self, why: &str) {
        let old = {
            let mut host = self.host.lock().unwrap_or_else(PoisonError::into_inner);
            self.halt_held(&mut host, why)
        };
        // What the core held goes outside its lock: what it drops may post to the node
        // (ignored now) or drop the node's last handle.
        drop(old);
    }

    /// [`Shared::halt`] with the core's lock held; answers the core it took out, for the
    /// caller to drop once it let go of the lock.
    pub(super) fn halt_held(&self, host: &mut Host, why: &str) -> Core {
        self.stop();
        // A stopped node holds no door open: nothing would take what comes through.
        for netlayer in &self.netlayers {
            netlayer.stop_accepting();
        }
        host.halt(why)
    }
}

impl Host {
    /// Closes every connection, tells the core each session is lost, and swaps the core
    /// for an empty one (nothing runs it again: the node is stopped); answers the old one.
    pub(super) fn halt(&mut self, why: &str) -> Core {
        let (conns, dials) = self.cut_all();
        if !conns.is_empty() || !dials.is_empty() {
            // A runtime shutting down is how a node's owner stops it: no warning.
            tracing::info!(
                why,
                connections = conns.len(),
                "OCapN node halted: its connections are closed"
            );
        }
        // A core that panicked may panic again: its connections are closed already.
        let told = catch_unwind(AssertUnwindSafe(|| {
            for conn in conns {
                self.core.closed(conn, why);
            }
            for conn in dials {
                self.core.dial_failed(conn, why);
            }
            // Nothing carries out what it asks any more.
            drop(self.core.take_actions());
        }));
        if told.is_err() {
            tracing::error!("the OCapN node's core panicked again while it halted");
        }
        let empty = Core::new(self.core.locator().clone(), SessionConfig::default());
        std::mem::replace(&mut self.core, empty)
    }

    /// Closes every connection and forgets the dials under way; answers which they were.
    fn cut_all(&mut self) -> (Vec<ConnId>, Vec<ConnId>) {
        let conns = self
            .take_conns()
            .into_iter()
            .map(|(id, c)| {
                c.cut();
                id
            })
            .collect();
        (conns, self.take_dials())
    }
}
