//! Why a promise broke, as the node says it: failures of the node itself (the peer could
//! not be reached, the session ended, no such object) carry a kind a host can match, and
//! name the peer by its `ocapn://` URI, never by an internal connection number.
//!
//! Failures only this node sees (a peer that cannot be reached, a session that ended)
//! break with the record `<gobs:error kind message>`, the form a gobs node gives its
//! peers too; any OCapN peer reads it as an error reason. Answers that go to peers as
//! they always have (an unknown or revoked swiss number, a revoked caretaker) stay plain
//! strings, named by the constants below so a host tells them apart without parsing.

use std::collections::BTreeMap;

use super::Core;
use crate::captp::{ConnId, Term};
use crate::syrup::Value;

/// The record label of an error with a kind (`<gobs:error kind message>`).
pub const ERROR_LABEL: &str = "gobs:error";

/// Kinds of the node's own failures (the first field of `<gobs:error kind message>`).
pub mod kinds {
    /// The peer could not be reached: the message was not delivered.
    pub const UNREACHABLE: &str = "unreachable";
    /// The session to the peer was gone when the message was to leave: it was not
    /// delivered, and sending again (through a fresh session) is safe.
    pub const NOT_SENT: &str = "not-sent";
    /// The session ended while the message was out: it may or may not have run.
    pub const SESSION_LOST: &str = "session-lost";
}

/// A `fetch` of a swiss number no object has.
pub const SWISS_UNKNOWN: &str = "no object has that swiss number on this node";

/// A `fetch` of a swiss number this node revoked.
pub const SWISS_REVOKED: &str = "that sturdyref was revoked: its swiss number names no object \
     on this node any more; ask whoever gave it to you for a new one";

/// A message to an object this node no longer has.
pub const OBJECT_RELEASED: &str = "no such object (it was released)";

/// How many ended connections keep their peer's URI, for messages about them.
const DEPARTED_KEPT: usize = 1024;

/// `<gobs:error kind message>`.
pub fn error_record(kind: &str, message: &str) -> Term {
    Term::Record(
        Box::new(Term::sym(ERROR_LABEL)),
        vec![Term::str(kind), Term::str(message)],
    )
}

/// The peers of connections that ended lately, so errors about them still name them.
#[derive(Default)]
pub(crate) struct Departed(BTreeMap<ConnId, String>);

impl Departed {
    fn remember(&mut self, conn: ConnId, uri: String) {
        self.0.insert(conn, uri);
        while self.0.len() > DEPARTED_KEPT {
            self.0.pop_first();
        }
    }
}

impl Core {
    /// The `ocapn://` URI of the peer on `conn`: once it said hello, or the one dialed; or
    /// of a connection that ended lately.
    pub fn peer_uri(&self, conn: ConnId) -> Option<String> {
        match self.sessions.get(&conn) {
            Some(s) => s
                .session
                .remote_location()
                .map(|(l, _)| l.clone())
                .or_else(|| s.dialed.clone())
                .map(|l| l.to_uri()),
            None => self.departed.0.get(&conn).cloned(),
        }
    }

    /// How messages name the peer on `conn`.
    pub(super) fn who(&self, conn: ConnId) -> String {
        self.peer_uri(conn)
            .unwrap_or_else(|| "a peer whose address was never learned".to_owned())
    }

    /// Keeps the URI of `conn`'s peer for messages after its session is gone.
    pub(super) fn remember_departed(&mut self, conn: ConnId) {
        if let Some(uri) = self.peer_uri(conn) {
            self.departed.remember(conn, uri);
        }
    }
}

/// Whether `reason` is a `<gobs:error kind ..>` of `kind`.
pub fn is_kind(reason: &Term, kind: &str) -> bool {
    match reason.to_value() {
        Some(Value::Record(label, fields)) => {
            label.as_symbol() == Some(ERROR_LABEL)
                && matches!(fields.first(), Some(Value::String(k)) if k == kind)
        }
        _ => false,
    }
}
