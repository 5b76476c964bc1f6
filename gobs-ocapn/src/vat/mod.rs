//! Vats meet the network: gobs actors exported to CapTP peers, and remote objects reached
//! from vat code.
//!
//! - [`export_actor`] hosts a `#[define_actor]` actor on a node: a peer calls it by
//!   method name (the first argument, a symbol), the other arguments go to the method
//!   and the result comes back. The call runs as a turn of the actor's vat, so a failing
//!   method breaks the peer's promise and leaves no trace.
//! - [`RemoteObject`] is a far reference to an object on a peer: [`RemoteObject::send`]
//!   (CapTP terms) and [`RemoteObject::call`] (by method name, serde-typed) return a gobs
//!   [`Promise`]; there is no near call.
//! - [`Remote<T>`] is the typed far reference to a gobs actor on a peer: its `send()` is
//!   the actor's own generated proxy (`counter.send().add(1)`), each method going by
//!   name ([`gobs_runtime::far`]).
//! - In a portrait, a [`RemoteObject`] is saved as its sturdyref and is live again after
//!   a restore (through [`set_default_node`]'s node, at its first send). One a gobs peer
//!   passes in a call gets its sturdyref from that peer before the method runs; see
//!   [`RemoteObject`]. [`SturdyRemote`] is the same for a reference that always has one.
//!
//! # References through calls by name
//!
//! A method's parameters and results may hold references, and they cross the wire as the
//! CapTP descriptors they are (`desc:export`, `desc:import-object`,
//! `desc:import-promise`, `desc:answer`):
//!
//! | in the method | on the wire, to the peer | a peer's reference arrives as |
//! | --- | --- | --- |
//! | `Ref<T>` / `AnyRef` of this process | this node's export (one per actor) | `Ref<T>` if it is one of this node's exported actors |
//! | [`RemoteObject`] received earlier | the peer's own object (`desc:export`), or a handoff to a third node | [`RemoteObject`]: any peer object or promise |
//! | [`Remote<T>`] received earlier, or made with [`Remote::export`] | as a [`RemoteObject`] | [`Remote<T>`], as a [`RemoteObject`] taken to be a `T` |
//!
//! So a machine passes its bindings to the boss with
//! `registration.call("register", &(my_bindings_ref,))`, and the boss's method
//! `pub fn register(&mut self, bindings: RemoteObject)` keeps the far reference and sends
//! to it later; the [`RemoteObject::call`] example shows the whole exchange.
//!
//! Arguments and results are MessagePack on the gobs side ([`bridge`]): symbols arrive as
//! strings, records and sets are refused, and a method returning `()` answers `[]`.

pub mod bridge;
mod export;
mod far_error;
mod peer_error;
mod remote;
mod retry;
mod sturdy;
pub mod syrup_types;
mod typed;

pub use bridge::{BridgeError, from_msgpack, to_msgpack};
pub use export::export_actor;
pub(crate) use export::{export as export_object, exported};
pub use peer_error::ERROR_LABEL;
pub use remote::{RemoteError, RemoteObject};
pub use sturdy::{SturdyRemote, set_default_node};
pub use syrup_types::{BigInt, Record, Symbol};
pub use typed::Remote;

#[cfg(doc)]
use gobs_runtime::Promise;
