//! Vats: event loops that own actors and run one turn at a time.
//!
//! A vat is a task on the process's worker pool ([`crate::pool`]), pinned to one worker:
//! its messages wait in its inbox, and when it has some, its worker runs them one turn at
//! a time. A *turn* handles one message; everything it does — state changes, spawns,
//! sends, promise answers — is recorded in a journal and either committed when the turn
//! returns `Ok`, or undone when it returns an error or panics. The journal also tells
//! persistence which actors a turn changed, without walking the graph.
//!
//! A panic anywhere in a turn's life — the turn itself, its save, its commit — breaks that
//! turn's promise with the panic message, and the vat keeps serving. Where a vat cannot go
//! on (its restore panicked, or undoing a turn did), it stops: every message still waiting
//! breaks with an error that says why, and [`Vat::is_stopped`] turns true.
//!
//! A vat stops by itself when nothing can reach it any more: no [`Vat`] handle and no
//! reference to any of its actors is left (see [`crate::reference`] for the counting).
//!
//! The files, one question each: [`handle`] (the [`Vat`] handle), [`shared`] (its inbox,
//! shared with every handle and reference), [`runner`] (how the worker pool runs it),
//! [`local`] (a vat on the caller's own thread instead), [`core`] (its actors and loop, on
//! its worker), [`table`] (calls into its actors), [`collect`] (freeing the actors no
//! reference holds), [`journal`] (what a turn did),
//! [`outbox`] (its committed sends to other vats), [`restore`] (room for a restore),
//! [`sleep`], [`dormancy`] and [`kept`] (sleepy actors: saved actors dropped from memory
//! until their next message, what a sleepy vat keeps, and the portraits they wake from),
//! [`context`] (the vat, codec and event loop this thread is in) and [`api`] (what code in
//! a turn calls).

mod api;
mod collect;
pub(crate) mod context;
mod core;
mod dormancy;
#[cfg(test)]
mod fast_tests;
mod handle;
mod journal;
mod kept;
mod local;
mod outbox;
mod restore;
mod runner;
mod scoped;
mod shared;
mod sleep;
mod slot;
mod table;

pub use self::core::VatStats;
pub use api::{self_ref, spawn, spawn_blocking, try_spawn};
pub use dormancy::Sleep;
pub use handle::{Vat, current_vat};
pub use local::{LocalWorker, LocalWorkerRun};

pub(crate) use self::core::{ChurnHook, VatCore, panic_message};
pub(crate) use api::{defer, deliver, near, near_call, post_near, post_to, tell_near};
pub(crate) use context::{current_vat_name, current_vat_shared, in_turn, with_core};
pub(crate) use dormancy::Revive;
pub(crate) use journal::Churn;
pub(crate) use runner::{start, start_here};
pub(crate) use shared::{Hold, Keep, VatShared};
pub(crate) use slot::{AnyTask, Slot};
