//! What the shell keeps beside the core: its connections, dials under way, and the
//! deadline the timer task sleeps until; and how the core's actions are carried out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::Shared;
use super::conn::{Conn, Overflow};
use crate::captp::ConnId;
use crate::netlayer::{Accepted, Stream};
use crate::node::{Action, Core};

/// The core and the connections it writes to; behind the node's lock.
pub(super) struct Host {
    pub(super) core: Core,
    conns: HashMap<ConnId, Arc<Conn>>,
    /// Dials under way: what the core wrote meanwhile, and whether it closed.
    unconnected: HashMap<ConnId, (Vec<u8>, bool)>,
    /// The deadline the timer task sleeps until.
    pub(super) timer_at: Option<Instant>,
    /// When the `op:gc-answer`s the core holds back for the sessions' next messages go
    /// out anyway (see [`GC_ANSWER_DELAY`]).
    gc_at: Option<Instant>,
}

/// How long an `op:gc-answer` may wait to leave with its session's next message. A caller
/// that calls again within it sends it in the same write as that call (one write and one
/// wake-up of the peer per call, not two); a session that goes quiet lets its peer free
/// the answer after it.
const GC_ANSWER_DELAY: std::time::Duration = std::time::Duration::from_millis(10);

/// The time on the runtime's clock: the core's deadlines then follow a paused clock in
/// tests, as the timer task's sleeps do.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Host {
    pub(super) fn new(core: Core) -> Host {
        Host {
            core,
            conns: HashMap::new(),
            unconnected: HashMap::new(),
            timer_at: None,
            gc_at: None,
        }
    }

    /// A netlayer accepted a connection.
    pub(super) fn accepted(&mut self, accepted: Accepted, shared: &Arc<Shared>) {
        let (stream, proof, hold) = accepted.into_parts();
        let conn = self.core.accepted_with(proof);
        tracing::debug!(conn = conn.0, "accepted a connection");
        self.conns
            .insert(conn, Conn::start(conn, stream, hold, shared));
        self.core.connected(conn, now());
    }

    /// A dial of the core's ended.
    pub(super) fn dialled(
        &mut self,
        conn: ConnId,
        result: std::io::Result<Stream>,
        shared: &Arc<Shared>,
    ) {
        let stream = match result {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(conn = conn.0, error = %e, "dial failed");
                self.unconnected.remove(&conn);
                return self.core.dial_failed(conn, &e.to_string());
            }
        };
        tracing::debug!(conn = conn.0, "dialled");
        let c = Conn::start(conn, stream, None, shared);
        self.core.connected(conn, now());
        let (bytes, close) = self.unconnected.remove(&conn).unwrap_or_default();
        if !bytes.is_empty() && self.send(conn, &c, &bytes) {
            return;
        }
        if close {
            return c.close();
        }
        self.conns.insert(conn, c);
    }

    /// Its connections, taken out (the node halts).
    pub(super) fn take_conns(&mut self) -> HashMap<ConnId, Arc<Conn>> {
        std::mem::take(&mut self.conns)
    }

    /// The dials under way, forgotten (the node halts).
    pub(super) fn take_dials(&mut self) -> Vec<ConnId> {
        self.unconnected.drain().map(|(conn, _)| conn).collect()
    }

    /// The connection's stream ended (or broke).
    pub(super) fn lost(&mut self, conn: ConnId, why: &str) {
        tracing::debug!(conn = conn.0, why, "connection lost");
        self.conns.remove(&conn);
        self.core.closed(conn, why);
    }

    /// Carries out what the core asked for, until it asks nothing more; tells the timer
    /// task of an earlier deadline.
    pub(super) fn dispatch(&mut self, shared: &Arc<Shared>) {
        loop {
            let actions = self.core.take_actions();
            if actions.is_empty() {
                break;
            }
            // Writes to one connection in a row go out as one.
            let mut batch: Option<(ConnId, Vec<u8>)> = None;
            for action in actions {
                if let Action::Write(conn, bytes) = action {
                    match &mut batch {
                        Some((to, buf)) if *to == conn => buf.extend_from_slice(&bytes),
                        _ => {
                            self.flush_batch(batch.take());
                            batch = Some((conn, bytes));
                        }
                    }
                    continue;
                }
                self.flush_batch(batch.take());
                match action {
                    Action::Write(..) => {}
                    Action::Close(conn) => {
                        if let Some(c) = self.conns.remove(&conn) {
                            c.close();
                        } else if let Some(u) = self.unconnected.get_mut(&conn) {
                            u.1 = true;
                        }
                    }
                    Action::Dial(conn, peer) => {
                        tracing::debug!(conn = conn.0, peer = %peer.to_uri(), "dialling");
                        self.unconnected.insert(conn, (Vec::new(), false));
                        shared.dial(conn, peer);
                    }
                }
            }
            self.flush_batch(batch);
        }
        if self.gc_at.is_none() && self.core.has_deferred_gc() {
            self.gc_at = Some(now() + GC_ANSWER_DELAY);
        }
        if let Some(at) = self.next_deadline()
            && self.timer_at.is_none_or(|t| at < t)
        {
            self.timer_at = Some(at);
            shared.wake_timer();
        }
    }

    /// When the timer task is next to call [`Host::timeout`]: the core's own deadlines
    /// and the held-back `op:gc-answer`s.
    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        match (self.core.poll_timeout(), self.gc_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The time is `now`: the core's deadlines, and the held-back `op:gc-answer`s once
    /// they have waited [`GC_ANSWER_DELAY`].
    pub(super) fn timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        if self.gc_at.is_some_and(|at| at <= now) {
            self.gc_at = None;
            self.core.flush_deferred_gc();
        }
    }

    fn flush_batch(&mut self, batch: Option<(ConnId, Vec<u8>)>) {
        let Some((conn, bytes)) = batch else { return };
        match self.conns.get(&conn).cloned() {
            Some(c) => {
                self.send(conn, &c, &bytes);
            }
            None => {
                if let Some(u) = self.unconnected.get_mut(&conn) {
                    u.0.extend_from_slice(&bytes);
                }
            }
        }
    }

    /// Writes to `c`; a peer that let too much pile up loses its connection (returns
    /// true then).
    fn send(&mut self, conn: ConnId, c: &Conn, bytes: &[u8]) -> bool {
        let Err(Overflow { unsent }) = c.write(bytes) else {
            return false;
        };
        c.close();
        tracing::warn!(
            conn = conn.0,
            unsent,
            "a peer reads too slowly: dropping it"
        );
        self.lost(
            conn,
            &format!(
                "the peer read too slowly: {unsent} bytes were waiting for it (at most {} \
                 may)",
                super::conn::MAX_UNSENT
            ),
        );
        true
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // The node is gone: its connections flush and end.
        for c in self.conns.values() {
            c.close();
        }
    }
}
