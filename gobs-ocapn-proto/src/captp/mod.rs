//! CapTP, sans-I/O: keys and identifiers, operations, passable terms, and the session
//! state machine.

pub(crate) mod hot;
mod keys;
mod ops;
mod records;
mod session;
mod term;

#[cfg(test)]
mod labels_tests;

pub use keys::{KeyPair, PublicKey, session_id};
pub(crate) use ops::position as position_of;
pub use ops::{Op, Selector, Target, labels_of};
pub use session::{
    DuplicateSession, Event, HELLO_TIMEOUT, IDLE_TIMEOUT, MAX_DEFERRED_GC_ANSWERS, OutTarget,
    Session, SessionConfig, ThirdParty,
};
pub use term::{CapRef, ConnId, DropSink, LocalRef, ObjId, RemoteRef, Term};

use thiserror::Error;

/// The CapTP version this implementation speaks.
pub const CAPTP_VERSION: &str = "1.0";

/// Which labels to write where the peers that exist disagree. Every form is read.
///
/// Goblins 0.18 and the current specification take `op:deliver … #f #f` for a message that
/// wants no answer and `op:gc-exports`/`op:gc-answers`, and end the session on anything
/// else; the public conformance suite takes only `op:deliver-only`, `op:gc-export` and
/// `op:gc-answer`. Both take a three-field `op:listen` (the one gobs writes to everyone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Learn it from the peer (the default, right for every peer): the first message in
    /// which the peer uses a label only one dialect has settles it for the session. Until
    /// then a peer reached over `tcp-testing-only` (the suite's netlayer, which Goblins
    /// does not have) is written the suite's labels and any other the current ones.
    #[default]
    Learn,
    /// Always the suite's labels, answer positions from 0.
    Suite,
    /// Always the current specification's labels, answer positions from 1.
    Spec,
}

/// The labels a session writes now (see [`Dialect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labels {
    /// `op:deliver-only`, `op:gc-export`, `op:gc-answer`: the public suite's.
    Suite,
    /// `op:deliver … #f #f`, `op:gc-exports`, `op:gc-answers`: Goblins 0.18's and the spec's.
    Current,
}

/// Why a CapTP operation failed or a session was aborted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CaptpError {
    /// A message of the wrong shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// An op this implementation does not know.
    #[error("unknown operation {0}")]
    UnknownOp(String),
    /// A protocol rule was broken.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A descriptor names a position that was never handed out (or was released).
    #[error("{0} {1} does not exist in this session")]
    Position(&'static str, u64),
    /// The peer speaks another CapTP version.
    #[error("unsupported CapTP version {0:?}; this node speaks {CAPTP_VERSION:?}")]
    Version(String),
    /// The `op:start-session` location signature does not check.
    #[error("op:start-session location signature does not verify against the session key")]
    BadLocationSignature,
    /// A signature does not check.
    #[error("signature does not verify")]
    BadSignature,
    /// No randomness.
    #[error("cannot read the OS random number generator: {0}")]
    Random(String),
    /// The session is not open yet.
    #[error("the session is not open yet (no op:start-session from the peer)")]
    NotOpen,
    /// The session has ended.
    #[error("the session was aborted")]
    Aborted,
}
