//! Time, as an input: the core reads no clock. Its host says when a connection came up
//! ([`Core::connected`]) and what time it is ([`Core::handle_timeout`]); the core says
//! when it next wants to be told ([`Core::poll_timeout`]). So a test can run it on a
//! simulated clock, and a host on any clock it likes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::Core;
use crate::captp::ConnId;

/// How long a peer has to send its `op:start-session` once its connection is up, unless
/// [`SessionConfig::hello_timeout`](crate::captp::SessionConfig::hello_timeout) says otherwise.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// Hello deadlines, earliest first. A session that opened (or ended) before its
/// deadline leaves its entry behind until [`Core::poll_timeout`] passes it by.
#[derive(Debug, Default)]
pub(super) struct HelloDeadlines(BinaryHeap<Reverse<(Instant, ConnId)>>);

impl Core {
    /// Connection `conn` (accepted, or a dial that connected) is up at `now`: its peer
    /// has until `now` + the configured hello timeout (by default [`HELLO_TIMEOUT`]) to say
    /// hello, or the session is aborted.
    pub fn connected(&mut self, conn: ConnId, now: Instant) {
        let deadline = now + self.config.hello_timeout;
        self.hello_deadlines.0.push(Reverse((deadline, conn)));
    }

    /// When the core next wants [`Core::handle_timeout`] called, if ever.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
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
    /// deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, conn))) = self.hello_deadlines.0.peek().copied() {
            if at > now {
                break;
            }
            self.hello_deadlines.0.pop();
            self.hello_deadline(conn);
        }
    }
}
