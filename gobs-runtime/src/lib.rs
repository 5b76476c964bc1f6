//! gobs-runtime: persistent actors in the style of Spritely Goblins.
//!
//! Actors live in [`Vat`]s, event loops that run one *turn* (one message) at a time.
//! A turn is transactional: if it returns an error or panics, nothing it did survives.
//! Actors in the same vat call each other synchronously ([`Ref::call`]); any actor can
//! send to any other asynchronously ([`Ref::send`]) and get a [`Promise`].

// Generated code names `::gobs_runtime::...`; this makes those paths work in here too.
#[allow(unused_extern_crates)]
extern crate self as gobs_runtime;

mod actor;
pub mod actor_lib;
mod answer;
pub mod carry;
mod codec;
mod entry;
mod env;
mod error;
pub mod far;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod id_hash;
pub mod inspect;
mod job;
mod methods;
pub mod persist;
pub mod pool;
#[doc(hidden)]
pub mod __private {
    pub use crate::private::*;
}
pub mod portrait;
mod private;
mod promise;
mod reference;
pub mod store;
pub mod task;
mod value;
mod vat;

pub use actor::{Actor, NoMethods, NoSends};
pub use actor_lib::{JournalMap, common_env};
pub use entry::ActorEntry;
pub use env::{Env, EnvBuilder};
pub use error::{BoxError, Error, Result};
#[doc = include_str!("../docs/define_actor.md")]
pub use gobs_macros::define_actor;
pub use methods::{DispatchError, MethodInfo, MethodKind, Methods, Reply};
pub use persist::{PersistentVat, Registry, Roots, StoreKind};
pub use promise::{Join, Promise, PromiseFuture, PromisedRef, Resolver, SendTarget, join};
pub use reference::{AnyRef, Ref};
pub use task::task;
pub use value::Value;
pub use vat::{Vat, VatStats, current_vat, self_ref, spawn, spawn_blocking, try_spawn};

// The README's tour compiles and runs (its first Rust block is a whole program).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
