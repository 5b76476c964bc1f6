//! Vats meet the network: gobs actors exported to CapTP peers, and remote objects reached
//! from vat code.
//!
//! - [`export_actor`] hosts a `#[define_actor]` actor on a node: a peer calls it by
//!   method name (the first argument, a symbol), the other arguments go to the method
//!   and the result comes back. The call runs as a turn of the actor's vat, so a failing
//!   method breaks the peer's promise and leaves no trace.
//!   [`export_actor_with`] exports it as [`ExportOptions`] say: each method given the
//!   [`Caller`] (the location the calling session proved), failures answered as plain
//!   text ([`PeerErrors`]) for peers that expect that.
//! - [`RemoteObject`] is a far reference to an object on a peer: [`RemoteObject::send`]
//!   (CapTP terms) and [`RemoteObject::call`] (by method name, serde-typed) return a gobs
//!   [`Promise`]; there is no near call.
//! - A far [`Ref<T>`](gobs_runtime::Ref) is the typed reference to a gobs actor on a
//!   peer ([`RemoteObject::typed`], [`RemoteObject::enliven_as`], or a `Ref<T>` in a
//!   peer's answer or argument): its `send()` is the actor's own generated proxy
//!   (`counter.send().add(1)`), each method going by name ([`gobs_runtime::far`]).
//! - In a portrait, a far `Ref<T>` or a [`RemoteObject`] is saved as its sturdyref and is
//!   live again after a restore, through the node attached to the registry
//!   ([`Node::attach_to`](crate::node::Node::attach_to); [`set_default_node`] is the
//!   fallback for lone persistent vats), at its first send. One a gobs peer passes in a
//!   call (or hands on from a third node) gets its sturdyref from its exporter before
//!   the method runs; see
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
//! | `Ref<T>` / `AnyRef` of this process | this node's export (one per actor) | `Ref<T>`: near if it is one of this node's exported actors, else far |
//! | [`RemoteObject`] received earlier | the peer's own object (`desc:export`), or a handoff to a third node | [`RemoteObject`]: any peer object or promise |
//! | far `Ref<T>` received earlier | as the [`RemoteObject`] it is | `Ref<T>`, far, taken to be a `T` |
//!
//! An `AnyRef` parameter takes only actors of this process: a far reference has no type
//! to give it (a far `AnyRef` exists only made from a far `Ref<T>`, with `T`'s entry).
//!
//! So a machine passes its bindings to the boss with
//! `registration.call("register", &(my_bindings_ref,))`, and the boss's method
//! `pub fn register(&mut self, bindings: RemoteObject)` keeps the far reference and sends
//! to it later; the [`RemoteObject::call`] example shows the whole exchange.
//!
//! Arguments and results are MessagePack on the gobs side ([`bridge`]): symbols arrive as
//! strings, records and sets are refused, and a method returning `()` answers `[]`.

// Each file names only those below it: bridge, syrup_types, peer_error, caller, default_node →
// remote → far_error, retry, sturdy, typed, terms → sturdyref_asks → export → messages.
pub mod bridge;
mod caller;
mod default_node;
mod export;
mod far_error;
mod messages;
mod peer_error;
mod plain;
mod remote;
mod retry;
mod sturdy;
mod sturdyref_asks;
pub mod syrup_types;
mod terms;
mod typed;

pub use bridge::{BridgeError, from_msgpack, to_msgpack};
pub use caller::Caller;
pub(crate) use export::export as export_object;
pub use export::{ExportOptions, PeerErrors, export_actor, export_actor_in, export_actor_with};
pub use peer_error::ERROR_LABEL;
pub use remote::{RemoteError, RemoteObject};
pub use sturdy::{SturdyRemote, set_default_node};
pub use syrup_types::{BigInt, Record, Symbol};
pub(crate) use terms::exported;

#[cfg(doc)]
use gobs_runtime::Promise;
