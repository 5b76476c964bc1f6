//! A session's settings.

use std::time::Duration;

use crate::captp::Dialect;
use crate::syrup::Limits;

/// How long a peer has to send its `op:start-session` once its connection is up, unless
/// [`SessionConfig::hello_timeout`] says otherwise.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a session with nothing in it may stay open, unless
/// [`SessionConfig::idle_timeout`] says otherwise.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Settings of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Which labels to write where peers disagree: learnt from the peer by default.
    pub dialect: Dialect,
    /// Decoding limits for each frame.
    pub limits: Limits,
    /// Largest frame accepted, in bytes.
    pub max_frame: usize,
    /// What a node does when a peer it already has an open session with opens another.
    pub duplicate_session: DuplicateSession,
    /// Whether a gobs actor's failure reaches peers in full (actor, vat, method list), for
    /// debugging; by default a peer gets the method's own error's kind and message only.
    pub peer_error_detail: bool,
    /// How long a peer has, once its connection is up, to send `op:start-session`; a peer
    /// that stays silent longer has its session aborted and its connection closed.
    pub hello_timeout: Duration,
    /// How long a session may stay open with nothing in it: neither side holds a
    /// reference from the other or awaits an answer, and the peer sends nothing. Such a
    /// session is closed after this long (at most half as long again), so a peer that
    /// proves nothing cannot hold a connection for ever; a peer that needs us again dials
    /// again. `None` keeps such sessions open.
    pub idle_timeout: Option<Duration>,
    /// Whether `op:gc-answer` waits to leave with the session's next message (or after at
    /// most [`MAX_DEFERRED_GC_ANSWERS`](crate::captp::MAX_DEFERRED_GC_ANSWERS) of them),
    /// instead of costing a write of its own, and a wake-up of the peer, per answer. The
    /// host must then flush what waits when the session goes quiet
    /// ([`Core::flush_deferred_gc`](crate::node::Core::flush_deferred_gc)); gobs-ocapn's
    /// node does, a few milliseconds later. Off by default.
    pub defer_gc_answers: bool,
}

/// What to do with a second session from a peer that already has an open one (crossed
/// hellos, both dialling at once, are resolved by the spec's rule either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DuplicateSession {
    /// Abort the new one, as the specification says ("if one does exist the new session
    /// should be aborted"): one session per peer pair keeps references comparable.
    /// A peer that died without closing its connection (a killed VM) is refused until
    /// the old connection ends.
    #[default]
    RefuseNew,
    /// Abort the old one and keep the new (a peer that reconnects is believed).
    ReplaceOld,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            dialect: Dialect::Learn,
            limits: Limits {
                max_len: 1 << 20,
                max_count: 1 << 16,
                max_depth: 32,
            },
            max_frame: 4 << 20,
            duplicate_session: DuplicateSession::RefuseNew,
            peer_error_detail: false,
            hello_timeout: HELLO_TIMEOUT,
            idle_timeout: Some(IDLE_TIMEOUT),
            defer_gc_answers: false,
        }
    }
}
