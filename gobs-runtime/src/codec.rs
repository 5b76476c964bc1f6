//! The context a reference is encoded or decoded in, one at a time on each thread.
//!
//! serde has no room for context, so what a [`Ref`](crate::Ref) becomes in bytes depends
//! on who is encoding: a call carrying references puts it in a table beside the bytes
//! ([`crate::carry`]); a by-name result refuses it; a persistent vat's save writes its
//! stable id and its restore reads one back ([`crate::persist::context`]). Whoever encodes
//! installs its [`Codec`] with [`vat::context::with_codec`](crate::vat::context::with_codec)
//! for the length of the encoding, and gets it back, with what the encoding added to it,
//! when the encoding is done. The innermost codec wins.
//!
//! This module only says what each codec holds: it sits below the vat's per-thread context
//! and everything that encodes, and names references only as the entries it holds. What a
//! reference does under each codec is in `reference/encoding.rs`.

mod portraits;
mod tables;

pub(crate) use portraits::{
    Directory, EntrySink, EntrySource, EntryWrites, RestoreContext, SaveContext, VatDirectory,
};
pub(crate) use tables::{Sink, Tables, take_all};

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
