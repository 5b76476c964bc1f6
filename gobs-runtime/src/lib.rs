//! gobs-runtime: persistent actors in the style of Spritely Goblins.
//!
//! Actors live in [`Vat`]s, event loops that run one *turn* (one message) at a time.
//! A turn is transactional: if it returns an error or panics, nothing it did survives.
//! Actors in the same vat call each other synchronously ([`Ref::call`]); any actor can
//! send to any other asynchronously ([`Ref::send`]) and get a [`Promise`].

// LAYERS: which module may import which, bottom up. A module imports from its own layer
// or the layers below, never from above (but for the two ties at the end); keep it so,
// or the import circles come back.
//
//  0. Ground: `portrait`, `id_hash`, `error`, `store/`, `persist/names.rs`.
//  1. Actor types: `methods` (calls by name), `entry` (an actor type and an actor behind
//     type erasure; it never names the `Actor` trait), `actor` (the `Actor` trait, and
//     the glue that erases one into an entry), `env`.
//  2. The engine, and what a reference is: `answer`, `job`, `pool` (`pool::Runnable` is
//     what a vat core implements; `pool` imports nothing of `vat`),
//     `vat/{scoped,slot,shared,journal,kept,dormancy,core,table,sleep}` (`vat/slot.rs`
//     declares `AnyTask`, which `task` implements; `vat/dormancy.rs` declares `Revive`,
//     which `persist/wake.rs` implements), `reference.rs` (`Ref`, `AnyRef`: data,
//     identity, holds; `reference/far_object.rs`: `FarObject` and `Carried`, which name
//     each other).
//  3. Codecs: `codec` says what each codec holds (`codec/tables.rs`: the tables of carried
//     references; `codec/portraits.rs`: a persistent vat's save and restore contexts). It
//     imports data types from below only, nothing that encodes or decodes.
//  4. The per-thread context: `vat/context.rs` holds the crate's one `thread_local!` (the
//     vat this thread runs, the codec in force, the event loop it drives, the local workers
//     it polls: `pool::DrivenHere`) and is the only code that touches it;
//     `vat/{runner,api,handle,local}` stand on it.
//  5. What references do: `reference/calls.rs` (near calls, sends, calls by name) and
//     `reference/encoding.rs` (`Ref`/`AnyRef` serde: a match on the codec in force).
//  6. Users: `promise/`, `task`, `carry`, `far`, `value`, `persist/` (its `context.rs` is
//     what references do in portraits), `inspect/`, `actor_lib/`, `private` (generated
//     code's entry points), `fuzzing`.
//
// Ties that still run upward, through the crate root's re-exports: the `Actor` trait's
// `Caller`/`Sender` are built from `Ref` and `SendTarget` (a typed handle and its trait
// name each other); a `FarObject` answers with a `Promise` (a promise keeps its far
// answer as `Any`, so `promise` names no far type); and a message's answer is a `Promise` (`methods::Reply`, `vat/api`,
// `vat/handle`) while `promise` queues its callbacks through `vat/api`.

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
mod msgpack;
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
pub use error::{
    BoxError, Error, ErrorKind, FarFailure, Result, decode_far_error, encode_far_error,
};
#[doc = include_str!("../docs/define_actor.md")]
pub use gobs_macros::define_actor;
pub use methods::{DispatchError, MethodInfo, MethodKind, Methods, Reply};
pub use persist::{PersistentVat, Registry, Roots, StoreKind};
pub use promise::{
    DriverCheck, Join, Promise, PromiseFuture, PromisedRef, Resolver, SendTarget, join,
    mark_driver_thread,
};
pub use reference::{AnyRef, Ref};
pub use task::task;
pub use value::Value;
pub use vat::{
    LocalWorker, LocalWorkerRun, Sleep, Vat, VatStats, current_vat, self_ref, spawn,
    spawn_blocking, try_spawn,
};

// The README's tour compiles and runs (its first Rust block is a whole program).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
