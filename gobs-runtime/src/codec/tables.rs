//! The tables a carrying encoding keeps references in, beside the bytes (see
//! [`crate::carry`] for what carrying is).

use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};

use crate::far::FarObject;
use crate::reference::AnyRef;

/// One reference carried beside a by-name call's bytes: an actor of this process, a
/// foreign reference, a far object, or several forms of the same object.
#[derive(Default)]
pub struct Carried {
    /// The reference as an actor of this process.
    pub actor: Option<AnyRef>,
    /// The reference as the network layer's own type (taken by
    /// [`deserialize_foreign`](crate::carry::deserialize_foreign)).
    pub foreign: Option<Box<dyn Any + Send>>,
    /// The reference as an object elsewhere, which a `Ref<T>` or `AnyRef` parameter takes
    /// as a far reference when there is no actor form.
    pub far: Option<Arc<dyn FarObject>>,
}

impl Carried {
    /// An actor of this process.
    pub fn actor(r: AnyRef) -> Carried {
        Carried {
            actor: Some(r),
            ..Carried::default()
        }
    }

    /// A foreign reference.
    pub fn foreign(f: impl Any + Send) -> Carried {
        Carried {
            foreign: Some(Box::new(f)),
            ..Carried::default()
        }
    }

    /// An object elsewhere (a far reference).
    pub fn far(object: Arc<dyn FarObject>) -> Carried {
        Carried {
            far: Some(object),
            ..Carried::default()
        }
    }

    /// The foreign form, if it is a `F`.
    pub fn foreign_as<F: Any>(&self) -> Option<&F> {
        self.foreign.as_ref().and_then(|f| f.downcast_ref::<F>())
    }
}

impl std::fmt::Debug for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carried")
            .field("actor", &self.actor)
            .field("foreign", &self.foreign.is_some())
            .field("far", &self.far.as_ref().map(|f| f.describe()))
            .finish()
    }
}

/// The references carried out of an encoding (shared so that a promised result, encoded
/// when it settles, still adds to the call's table).
pub(crate) type Sink = Arc<Mutex<Vec<Carried>>>;

/// What a carrying encoding or decoding works with: the references that came with the
/// bytes, and the table the references going out are added to.
pub(crate) struct Tables {
    pub(crate) incoming: Vec<Carried>,
    pub(crate) outgoing: Sink,
}

impl Tables {
    /// Adds `entry` to the outgoing table; its index there.
    pub(crate) fn put(&mut self, entry: Carried) -> Result<u32, String> {
        let mut out = self.outgoing.lock().unwrap_or_else(PoisonError::into_inner);
        out.push(entry);
        u32::try_from(out.len() - 1).map_err(|_| "more than 2^32 carried references".to_string())
    }
}

/// Empties `sink`: the references an encoding carried out.
pub(crate) fn take_all(sink: &Sink) -> Vec<Carried> {
    std::mem::take(&mut *sink.lock().unwrap_or_else(PoisonError::into_inner))
}
