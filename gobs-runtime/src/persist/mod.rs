//! Persistence: persistent vats, the registry that joins them, and how references are
//! written into portraits.
//!
//! # The commit invariant
//!
//! Every vat of a registry keeps its portraits in the registry's one [`Store`](crate::store::Store),
//! which also holds the *catalog*: the names of the vats the registry holds, each either
//! *saved* (it has committed a graph) or only *listed*. Each churn of each vat is one
//! [`RegistryCommit`](crate::store::RegistryCommit), atomic across vats. What a churn does to other vats is durable
//! together with the churn's own writes, or not at all:
//!
//! - **A reference into another vat** (a `Ref` to its actor, or its `Vat` handle) that the
//!   churn saves lists that vat in the same commit, if the catalog lacks it. A vat spawned
//!   in a turn (`spawn_vat`) is not saved yet when its spawner commits; its own first
//!   commit comes later. So whatever instant a crash hits, the store never holds a
//!   reference to a vat its catalog does not list.
//! - **Destroying a vat** stops it (its queue done, its last churn committed), then drops
//!   its graph and its catalog entry in one commit. References others still hold to it
//!   are saved by name and come back broken.
//! - **Type names** are interned registry-wide (references, and in the log store
//!   portraits, name a type by number): the names numbered since the last commit go into
//!   every commit, so no portrait is durable before the names it uses.
//! - **The output gate** holds: nothing a churn sends leaves the vat before its commit
//!   returned (and, with [`Durability::EveryCommit`](crate::store::Durability::EveryCommit), is on disk).
//!
//! # Recovery
//!
//! On open the registry reads the catalog. A vat comes back when first asked for (by
//! `start_vat`, or by a reference in another vat's portrait), in any order, cycles
//! included. Recovery never wedges:
//!
//! - a vat *listed* but never saved (a crash between its spawner's commit and its own),
//!   a vat whose portraits do not restore (damaged, or from another program), and a vat
//!   the catalog does not hold at all (destroyed) come back as a stopped stand-in:
//!   references to them are broken references (messages fail with
//!   [`Error::VatStopped`](crate::Error::VatStopped)), each reported with a warning, and
//!   [`Registry::broken_vats`](crate::Registry::broken_vats) says which and why. The rest of the registry works, and
//!   [`Registry::destroy_vat`](crate::Registry::destroy_vat) removes a broken vat;
//! - a store that existed and is gone (its marker file `REGISTRY` names it) is
//!   [`Error::StoreMissing`](crate::Error::StoreMissing), never a silent fresh start;
//! - a torn tail of a log store (a crash mid-append) is cut, with an error-level log
//!   saying how many commits it held ([`Registry::lost_at_open`](crate::Registry::lost_at_open)).

//!
//! # Sleepy actors
//!
//! A persistent vat may keep only some of its saved actors in memory: choose its
//! [`Sleep`](crate::Sleep) strategy with [`Registry::set_sleep`](crate::Registry::set_sleep)
//! before it starts. [`Sleep::Always`](crate::Sleep::Always) drops every saved actor from
//! memory once the turn that used it has committed; [`Sleep::Lru`](crate::Sleep::Lru)
//! keeps the `awake` most recently used. A sleepy vat also restores its actors asleep. A
//! sleeping actor keeps its id, its references stay live, and its next message wakes it
//! from its portrait inside the turn that needs it: to senders, far references and
//! pipelined messages it is an actor like any other. Only a saved, idle actor sleeps
//! (never one in a turn, one with unsaved changes, or one a near call holds); an actor
//! whose map keeps its entries as portraits of their own stays awake. State an actor keeps
//! outside its saved fields (a transient field) does not survive a sleep, as it does not
//! survive a restart. A wake that fails (its portrait no longer decodes) breaks that
//! message's promise with [`Error::Restore`](crate::Error::Restore) naming the vat and the
//! actor; nothing is lost.

pub(crate) mod churn;
pub(crate) mod context;
mod destroy;
mod directory;
pub(crate) mod entries;
mod gone;
pub mod migrate;
pub(crate) mod names;
mod nodes;
mod open;
pub(crate) mod persistent;
pub(crate) mod reach;
pub(crate) mod registry;
mod restore;
pub(crate) mod roots;
mod store_kind;
pub(crate) mod stored;
mod wake;

pub use persistent::{PersistentVat, PersistentVatBuilder};
pub use registry::Registry;
pub use roots::Roots;
pub use store_kind::{MARKER, StoreKind};
