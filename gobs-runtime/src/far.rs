//! Objects elsewhere, reached by method name: the extension point through which a network
//! layer gives typed references to actors on other nodes.
//!
//! A typed `send()` to an actor of this process runs a closure over the actor in a turn
//! of its vat, and a closure cannot cross a wire. An actor on a network peer is reached
//! by *method name* instead, as any CapTP peer reaches it: the generated `…Send` proxy of
//! every by-name method (`pub`, not `#[actor(local)]`) checks for a
//! [`SendTarget::Far`](crate::SendTarget::Far) target, and then
//!
//! 1. encodes its arguments as a MessagePack array, carrying the references in them
//!    ([`crate::carry`]: a `Ref<T>` of this process is exported, a network reference goes
//!    as itself);
//! 2. hands them to the target's [`FarObject::send_by_name`];
//! 3. decodes the answer as the method's result type, references carried: a reference
//!    to one of this process's actors comes back as its (near) `Ref<T>`, a reference to
//!    an object elsewhere, where the type says `Ref<U>`, as a far `Ref<U>` (the network
//!    layer's object, taken to be a `U`), and as the network layer's own reference type
//!    where the type says that.
//!
//! So `remote_counter.send().increment(5)` is a `Promise<u32>` whether the counter is in
//! this vat, in another, or on another host; only the near `call()` is absent. Methods
//! off the by-name table and the closure forms (`send_with`, …) break their promise with
//! [`Error::NotByName`](crate::Error::NotByName).
//!
//! An argument type that cannot be encoded, or a result type that cannot be decoded
//! (`Serialize` / `DeserializeOwned` missing), breaks that send's promise with an error
//! naming the method and the type; sends to local actors are not affected.
//!
//! # Pipelining
//!
//! A typed send to a far reference answers after its round trip; its answer can be sent
//! to before then. The proxy sends through [`FarObject::send_by_name_pipelined`], which
//! gives beside the promise a far object for the answer's position, kept in the promise.
//! `promise.pipeline()` of a `Promise<Ref<U>>` made so is a [`PromisedRef`] whose typed
//! `send()` goes to that far object at once (CapTP's `desc:answer`): a chain of calls
//! costs one round trip, not one each, and a message sent to an answer that breaks breaks
//! with its error: with `bank` far, `bank.send().open(owner).pipeline().send().deposit(5)`
//! sends both messages at once, the deposit to `open`'s answer.
//!
//! [`PromisedRef`]: crate::PromisedRef
//!
//! # A client that only calls
//!
//! The proxy a client sends through is generated from the actor's `#[define_actor]`
//! impl block, so the client links the crate that defines the actor type, as a tonic
//! client links the crate its `.proto` generates. That crate is the contract: put the
//! actor types a service offers in a small API crate that both sides depend on. Their
//! method bodies come along (they are the same Rust items) but never run on the client: a
//! far reference sends by name and the peer runs its own. No separate interface type is
//! generated, so there is nothing to keep in step with the implementation.

use crate::codec::Codec;
use crate::reference::Carried;
use crate::vat::context::with_current_codec;

pub use crate::reference::FarObject;

mod link;
mod revived;
pub use link::{FarLink, FarResolver, set_default_resolver};
pub(crate) use revived::Revived;

/// While a persistent vat restores its portraits: the link of its registry, through
/// which a far reference decoded now will reach the network. `None` outside a restore,
/// and for a vat restored without a registry.
pub fn restoring_link() -> Option<FarLink> {
    with_current_codec(|c| match c {
        Some(Codec::Restore(ctx)) => ctx.directory.as_ref().map(|d| d.far_link()),
        _ => None,
    })
}

/// Decodes a far object's answer as `R`, references carried ([`crate::carry`]).
///
/// Syrup has no unit: a gobs actor's method returning `()` answers an empty list, so an
/// empty list also decodes as `()` (and as any type that decodes from MessagePack nil).
pub fn decode_answer<R: serde::de::DeserializeOwned>(
    bytes: &[u8],
    refs: Vec<Carried>,
) -> Result<R, crate::carry::CarryError> {
    const EMPTY_ARRAY: u8 = 0x90;
    const NIL: u8 = 0xc0;
    match crate::carry::decode_carrying::<R>(bytes, refs) {
        Err(e) if bytes == [EMPTY_ARRAY] => {
            crate::carry::decode_carrying::<R>(&[NIL], Vec::new()).map_err(|_| e)
        }
        decoded => decoded,
    }
}
