//! gobs-runtime: persistent actors in the style of Spritely Goblins.
//!
//! Actors live in [`Vat`]s, event loops that run one *turn* (one message) at a time.
//! A turn is transactional: if it returns an error or panics, nothing it did survives.
//! Actors in the same vat call each other synchronously ([`Ref::call`]); any actor can
//! send to any other asynchronously ([`Ref::send`]) and get a [`Promise`].

// LAYERS: no file imports from a file above it, so the crate has no import circle
// (`scripts/import-circles gobs-runtime/src` checks it, following re-exports to the file
// that defines each name). Keep it so. Bottom up:
//
//  0. Ground: `portrait`, `id_hash`, `msgpack`, `error/`, `store/`, `persist/names.rs`.
//  1. Cells and messages: `answer` (a promise's cell), `pool` (`pool::Runnable` is what a
//     vat core implements), `job/` (a message and its envelope), `promise.rs` (`Promise`
//     and `Resolver` as values: made, settled now, blocked on, awaited; nothing that
//     needs a vat).
//  2. Actors and references as data: `methods` (calls by name; a `Reply` may be a
//     `Promise`), `vat/shared.rs` (inbox, holds), `vat/slot.rs` (a `Slot<A>` that knows
//     no actor), `entry` (`ActorEntry`, `AnyActor`, `ActorSlot`: they name each other),
//     `reference.rs` (`Ref`: identity, holds), `reference/erased.rs` (`AnyRef`,
//     `FarObject`, `Carried`: they name each other), `promise/pipeline.rs` (`PromisedRef`,
//     `SendTarget`), `far/link.rs`.
//  3. `actor`: the `Actor` trait (its `Caller`/`Sender` are built from `Ref` and
//     `SendTarget`, which is why those are data below it), and the glue that erases an
//     actor into an entry. Then what is bound by `T: Actor`: `reference/typed.rs`, `env`,
//     `value`.
//  4. The vat core, `vat/{journal,kept,dormancy,core,table,collect,restore,sleep}`, and
//     `codec` (what each codec holds; `codec/portraits.rs`: a persistent vat's save and
//     restore contexts), which imports nothing that encodes or decodes.
//  5. The per-thread context: `vat/context.rs` holds the crate's one `thread_local!` (the
//     vat this thread runs, the codec in force, the event loop it drives, the local
//     workers it polls) and is the only code that touches it.
//  6. What stands on it: `vat/{api,runner,handle,local}`, `promise/wait.rs` (where a
//     blocking wait would deadlock), `promise/turns.rs` (callbacks and answers at commit),
//     `promise/pipeline/sends.rs`, `reference/calls.rs` (near calls, sends, calls by
//     name), `reference/encoding.rs` (`Ref`/`AnyRef` serde: a match on the codec in
//     force), `task`, `carry`, `far`, `persist/` (its `context.rs` is what references do
//     in portraits), `inspect/`, `actor_lib/`, `private` (generated code's entry points),
//     `fuzzing`.

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
