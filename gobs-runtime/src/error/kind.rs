//! What kind of failure an [`Error`] is, for a program to match on; and the failures of a
//! message to an object on a network peer, which only a network layer produces.

use super::Error;

/// What kind of failure an [`Error`] is: what a program can do about it, whatever its
/// text says. From [`Error::kind`].
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
/// see [`Error::Far`]. (The object's own errors are [`Error::Actor`], as near.)
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

impl Error {
    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Far(far) => far.kind,
            Error::NoSuchActor { .. } => ErrorKind::NotFound,
            Error::Dispatch { .. } | Error::RefByName { .. } | Error::NotByName { .. } => {
                ErrorKind::Refused
            }
            Error::Actor { .. } | Error::Panicked { .. } | Error::Unanswered { .. } => {
                ErrorKind::Broken
            }
            Error::VatStopped { .. } | Error::VatFailed { .. } | Error::VatBroken { .. } => {
                ErrorKind::Stopped
            }
            Error::FarCall { .. }
            | Error::NotInTurn { .. }
            | Error::WouldBlock { .. }
            | Error::WouldDeadlock { .. }
            | Error::Reentrant { .. }
            | Error::DuplicateName { .. }
            | Error::NotInEnv { .. }
            | Error::BadVatName { .. }
            | Error::Builder { .. }
            | Error::VatExists { .. }
            | Error::NotPersistent { .. }
            | Error::RootMismatch { .. }
            | Error::WrongType { .. } => ErrorKind::Misuse,
            Error::Store { .. }
            | Error::Save { .. }
            | Error::Restore { .. }
            | Error::Portrait { .. }
            | Error::PortraitNewer { .. }
            | Error::MissingUpgrade { .. }
            | Error::NothingSaved { .. }
            | Error::StoreMissing { .. } => ErrorKind::Storage,
            Error::NoneFulfilled { errors } => errors.first().map_or(ErrorKind::Other, Error::kind),
            Error::Start { .. } => ErrorKind::Other,
        }
    }

    /// The error an actor's method returned, as type `E`: the `Overdraft` of a method
    /// returning `Result<u64, Overdraft>`, whether the call was near or far (far, when
    /// both programs list the type with [`far_error!`](crate::far_error)).
    pub fn actor_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Actor {
                source: Some(source),
                ..
            } => source.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// A far failure: `target` (an `ocapn://` URI) could not take a message, for `kind`.
    pub fn far(kind: ErrorKind, target: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Far(Box::new(FarFailure {
            kind,
            target: target.into(),
            message: message.into(),
        }))
    }
}
