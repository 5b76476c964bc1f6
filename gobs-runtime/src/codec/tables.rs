//! The tables a carrying encoding keeps references in, beside the bytes (see
//! [`crate::carry`] for what carrying is).

use std::sync::{Arc, Mutex, PoisonError};

use crate::reference::Carried;

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
