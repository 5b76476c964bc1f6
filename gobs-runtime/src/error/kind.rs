//! What kind of failure an [`Error`](super::Error) is, for a program to match on; and the failures of a
//! message to an object on a network peer, which only a network layer produces.

/// What kind of failure an [`Error`](super::Error) is: what a program can do about it, whatever its
/// text says. From [`Error::kind`](super::Error::kind).
///
/// The first five are the ways a message to an object can fail, near or far:
///
/// | kind | the message... | typical cause |
/// |---|---|---|
/// | `NotFound` | found no object | a swiss number nobody has, a collected actor |
/// | `Refused` | reached it and was turned away before running | revoked, unknown method, wrong arguments |
/// | `Broken` | ran, and the object failed | the method's own `Err` (downcast it), a panic |
/// | `Unreachable` | never left: the peer could not be reached | the peer is down or the address is wrong |
/// | `SessionLost` | left, and the connection ended before its answer | the peer died or restarted |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No such object (an unknown or revoked swiss number is `Refused` when the exporter
    /// knows it was revoked).
    NotFound,
    /// The object exists and turned the message away: revoked, no such method, arguments
    /// of the wrong type.
    Refused,
    /// The object ran the message and failed: its own error (recover it with
    /// `std::error::Error::source` and a downcast), or a panic. Its turn was rolled back.
    Broken,
    /// The peer could not be reached; the message was not delivered.
    Unreachable,
    /// The connection to the peer ended while the message was out: it may or may not have
    /// run.
    SessionLost,
    /// The vat (or node) has stopped and takes no more messages.
    Stopped,
    /// The program used the API where it does not work (a blocking wait inside a turn, a
    /// near call to another vat, ...); the message says what to do instead.
    Misuse,
    /// A store could not save or restore.
    Storage,
    /// Anything else.
    Other,
}

/// A message to an object on a network peer that failed outside the object's own code:
/// see [`Error::Far`](super::Error::Far). (The object's own errors are
/// [`Error::Actor`](super::Error::Actor), as near.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target}: {message}")]
pub struct FarFailure {
    /// What went wrong, for matching.
    pub kind: ErrorKind,
    /// The object or peer, named by its `ocapn://` URI where known.
    pub target: String,
    /// What happened and what to do.
    pub message: String,
}
