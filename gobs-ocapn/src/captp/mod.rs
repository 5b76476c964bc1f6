//! CapTP, sans-I/O: keys and identifiers, operations, passable terms, and the session
//! state machine.

mod keys;
mod ops;
mod session;
mod term;

pub use keys::{KeyPair, PublicKey, session_id};
pub(crate) use ops::position as position_of;
pub use ops::{CAPTP_VERSION, Op, Selector, Target};
pub use session::{DuplicateSession, Event, OutTarget, Session, SessionConfig, ThirdParty};
pub use term::{ConnId, DropSink, LocalRef, ObjId, Ref, RemoteRef, Term};

use thiserror::Error;

/// Which variant of the wire protocol to write. Both are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The public conformance suite's: `op:deliver-only`, `op:gc-export`/`op:gc-answer`,
    /// answer positions from 0, `op:listen` with a wants-partial flag.
    #[default]
    Suite,
    /// The draft specification's: `op:deliver … false false`, `op:gc-exports`/
    /// `op:gc-answers`, answer positions from 1, two-field `op:listen`.
    Spec,
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
