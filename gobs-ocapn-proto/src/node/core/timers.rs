//! Time, as an input: the core reads no clock. Its host says when a connection came up
//! ([`Core::connected`]) and what time it is ([`Core::handle_timeout`]); the core says
//! when it next wants to be told ([`Core::poll_timeout`]). So a test can run it on a
//! simulated clock, and a host on any clock it likes.
//!
//! Two timers: each new connection's hello deadline, and, while any session exists, a
//! sweep every half [`SessionConfig::idle_timeout`](crate::captp::SessionConfig::idle_timeout)
//! that closes open sessions found empty and silent at two sweeps in a row (so after the
//! idle timeout, and before one and a half of it).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::Core;
use crate::captp::ConnId;

/// Hello deadlines, earliest first. A session that opened (or ended) before its
/// deadline leaves its entry behind until [`Core::poll_timeout`] passes it by.
#[derive(Debug, Default)]
pub(super) struct HelloDeadlines(BinaryHeap<Reverse<(Instant, ConnId)>>);

impl Core {
    /// Connection `conn` (accepted, or a dial that connected) is up at `now`: its peer
    /// has until `now` + the configured hello timeout (by default [`HELLO_TIMEOUT`](crate::node::HELLO_TIMEOUT)) to say
    /// hello, or the session is aborted.
    pub fn connected(&mut self, conn: ConnId, now: Instant) {
        let deadline = now + self.config.hello_timeout;
        self.hello_deadlines.0.push(Reverse((deadline, conn)));
        if self.idle_sweep.is_none() {
            self.idle_sweep = self.config.idle_timeout.map(|t| now + t / 2);
        }
    }

    /// When the core next wants [`Core::handle_timeout`] called, if ever.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let hello = self.next_hello_deadline();
        match (hello, self.idle_sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn next_hello_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, conn))) = self.hello_deadlines.0.peek().copied() {
            if self
                .sessions
                .get(&conn)
                .is_some_and(|s| !s.session.is_open() && !s.session.is_aborted())
            {
                return Some(at);
            }
            self.hello_deadlines.0.pop();
        }
        None
    }

    /// The time is `now`: aborts every session whose peer has not said hello by its
    /// deadline, and, when a sweep is due, every session idle for the idle timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, conn))) = self.hello_deadlines.0.peek().copied() {
            if at > now {
                break;
            }
            self.hello_deadlines.0.pop();
            self.hello_deadline(conn);
        }
        if self.idle_sweep.is_some_and(|at| at <= now) {
            self.sweep_idle();
            self.idle_sweep = match self.config.idle_timeout {
                Some(t) if !self.sessions.is_empty() => Some(now + t / 2),
                _ => None,
            };
        }
    }

    /// Aborts each open session found empty and silent at this sweep and the one before.
    fn sweep_idle(&mut self) {
        let mut idle = Vec::new();
        for (conn, s) in &mut self.sessions {
            let quiet = s.session.is_open()
                && !s.heard
                && s.session.holds_nothing()
                && s.on_open.is_empty()
                && s.unread.as_ref().is_none_or(Vec::is_empty);
            s.heard = false;
            s.quiet_sweeps = if quiet { s.quiet_sweeps + 1 } else { 0 };
            if s.quiet_sweeps >= 2 {
                idle.push(*conn);
            }
        }
        if idle.is_empty() {
            return;
        }
        for conn in idle {
            if let Some(s) = self.sess(conn) {
                s.session
                    .abort("idle: neither side held anything and the peer sent nothing");
            }
        }
        self.flush();
    }
}
