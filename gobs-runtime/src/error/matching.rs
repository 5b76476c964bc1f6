//! How a program tells errors apart: an error's kind, an actor's own error inside it, and
//! the far failures a network layer makes.

use super::{Error, ErrorKind, FarFailure};

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
