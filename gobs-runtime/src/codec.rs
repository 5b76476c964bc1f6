//! The context a reference is encoded or decoded in, one at a time on each thread.
//!
//! serde has no room for context, so what a [`Ref`](crate::Ref) becomes in bytes depends
//! on who is encoding: a call carrying references puts it in a table beside the bytes
//! ([`crate::carry`]); a by-name result refuses it; a persistent vat's save writes its
//! stable id and its restore reads one back ([`crate::persist::context`]). Whoever encodes
//! installs its [`Codec`] with [`with`] for the length of the encoding, and gets it back,
//! with what the encoding added to it, when the encoding is done. The innermost codec wins.

use std::cell::RefCell;
use std::sync::Arc;

use serde::ser::Error as _;

use crate::carry::{self, Carried, Tables};
use crate::persist::context::{self as persist, RestoreContext, SaveContext};
use crate::portrait::ActorId;
use crate::value::AnyRef;
use crate::vat::VatShared;
use crate::vat::context;

/// What encoding or decoding references means right now.
pub(crate) enum Codec {
    /// References travel beside the bytes, in tables.
    Carry(Tables),
    /// A by-name call's result is encoded: references are refused, the first one named.
    ByName(Option<String>),
    /// A persistent vat saves portraits.
    Save(SaveContext),
    /// A persistent vat restores portraits.
    Restore(RestoreContext),
}

/// Runs `f` with `codec` in force on this thread; gives the codec back after.
pub(crate) fn with<R>(codec: Codec, f: impl FnOnce() -> R) -> (R, Codec) {
    let cell = RefCell::new(codec);
    let r = context::with_codec_set(&cell, f);
    (r, cell.into_inner())
}

/// Runs `f` with the codec in force, if any. `f` must not encode or decode references.
pub(crate) fn current<R>(f: impl FnOnce(Option<&mut Codec>) -> R) -> R {
    context::with_codec(|cell| match cell {
        Some(cell) => f(Some(&mut cell.borrow_mut())),
        None => f(None),
    })
}

/// Whether references are being carried on this thread.
pub(crate) fn carrying() -> bool {
    current(|c| matches!(c, Some(Codec::Carry(_))))
}

/// Encodes a reference to actor `id` of `vat`, as the codec in force says.
pub(crate) fn serialize_ref<S: serde::Serializer>(
    vat: &Arc<VatShared>,
    id: ActorId,
    describe: impl Fn() -> String,
    as_any: impl FnOnce() -> AnyRef,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    enum Then {
        Carry(Result<u32, String>),
        Save(Result<persist::Form, String>),
    }
    let then = current(|c| match c {
        Some(Codec::Carry(tables)) => Ok(Then::Carry(tables.put(Carried::actor(as_any())))),
        Some(Codec::ByName(first)) => {
            let reference = describe();
            let message = format!("{reference} cannot be carried by a call by name");
            first.get_or_insert(reference);
            Err(message)
        }
        Some(Codec::Save(ctx)) => Ok(Then::Save(ctx.form_of(vat, id, &describe))),
        Some(Codec::Restore(_)) | None => Ok(Then::Save(Err(persist::unsaved(&describe)))),
    });
    match then.map_err(S::Error::custom)? {
        Then::Carry(index) => carry::placeholder(index.map_err(S::Error::custom)?, serializer),
        Then::Save(form) => form.map_err(S::Error::custom)?.serialize(id, serializer),
    }
}
