//! What this thread is doing for gobs: the vat it runs, the codec its references are
//! encoded in, the event loop it drives and the local workers it polls. All of it lives in
//! the crate's one thread-local; the vat and the codec are set through [`Scoped`] cells
//! (for the length of a closure, put back by a guard when it returns or unwinds).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::codec::Codec;
use crate::pool::DrivenHere;
use crate::vat::core::VatCore;
use crate::vat::scoped::Scoped;
use crate::vat::shared::VatShared;

struct Context {
    /// The vat running on this thread, while a worker runs it.
    core: Scoped<VatCore>,
    /// How references are encoded and decoded right now (see [`crate::codec`]).
    codec: Scoped<RefCell<Codec>>,
    /// The event loop this thread drives, if any (see [`crate::promise`]'s `wait`).
    driver: Cell<Option<DriverCheck>>,
    /// The local workers this thread polls (see [`crate::pool`]'s `run_ready_after`).
    driven: DrivenHere,
}

/// Says whether this thread still drives an event loop that settles promises, and names
/// it (`the current-thread tokio runtime that runs the OCapN node`); `None` once it no
/// longer does.
pub type DriverCheck = fn() -> Option<&'static str>;

// No destructor: with one, every access would first check whether the thread is ending,
// and an access from another thread-local's destructor could fail.
const _: () = assert!(!std::mem::needs_drop::<Context>());

thread_local! {
    static CONTEXT: Context = const {
        Context {
            core: Scoped::new(),
            codec: Scoped::new(),
            driver: Cell::new(None),
            driven: DrivenHere::new(),
        }
    };
}

/// Runs `f` with the list of local workers this thread polls.
pub(crate) fn with_driven<R>(f: impl FnOnce(&DrivenHere) -> R) -> R {
    CONTEXT.with(|c| f(&c.driven))
}

/// Runs `f` with `core` as this thread's vat.
pub(crate) fn enter<R>(core: &VatCore, f: impl FnOnce() -> R) -> R {
    CONTEXT.with(|c| c.core.set(core, f))
}

/// Runs `f` with the vat running on this thread, if any.
pub(crate) fn with_core<R>(f: impl FnOnce(&VatCore) -> R) -> Option<R> {
    CONTEXT.with(|c| c.core.with(|core| core.map(f)))
}

/// Like [`with_core`], but only while a turn is running.
pub(crate) fn with_turn<R>(f: impl FnOnce(&VatCore) -> R) -> Option<R> {
    with_core(|core| core.in_turn().then(|| f(core))).flatten()
}

/// Runs `f` with `codec` in force on this thread; gives the codec back after, with what
/// the encoding added to it. The innermost codec wins.
pub(crate) fn with_codec<R>(codec: Codec, f: impl FnOnce() -> R) -> (R, Codec) {
    let cell = RefCell::new(codec);
    let r = CONTEXT.with(|c| c.codec.set(&cell, f));
    (r, cell.into_inner())
}

/// Runs `f` with the codec in force, if any. `f` must not encode or decode references
/// (the codec is borrowed mutably while it runs).
pub(crate) fn with_current_codec<R>(f: impl FnOnce(Option<&mut Codec>) -> R) -> R {
    CONTEXT.with(|c| {
        c.codec.with(|cell| match cell {
            Some(cell) => f(Some(&mut cell.borrow_mut())),
            None => f(None),
        })
    })
}

/// Runs `f` with the vat running on this thread and the codec in force, if any, in one
/// visit of the thread's context (a restore decodes a reference per edge). `f` must not
/// encode or decode references (the codec is borrowed mutably while it runs).
pub(crate) fn with_core_and_codec<R>(
    f: impl FnOnce(Option<&VatCore>, Option<&mut Codec>) -> R,
) -> R {
    CONTEXT.with(|c| {
        c.core.with(|core| {
            c.codec.with(|cell| match cell {
                Some(cell) => f(core, Some(&mut cell.borrow_mut())),
                None => f(core, None),
            })
        })
    })
}

/// Whether references are being carried on this thread.
pub(crate) fn carrying() -> bool {
    with_current_codec(|c| matches!(c, Some(Codec::Carry(_))))
}

pub(crate) fn current_vat_name() -> Option<String> {
    with_core(|core| core.shared.name.clone())
}

pub(crate) fn current_vat_id() -> Option<u64> {
    with_core(|core| core.shared.id)
}

pub(crate) fn current_vat_shared() -> Option<Arc<VatShared>> {
    with_turn(|core| core.shared.clone())
}

pub(crate) fn in_turn() -> bool {
    with_turn(|_| ()).is_some()
}

/// Notes the event loop this thread drives (or, with `None`, that it drives none).
pub(crate) fn set_driver(check: Option<DriverCheck>) {
    CONTEXT.with(|c| c.driver.set(check));
}

/// The event loop this thread was last noted to drive.
pub(crate) fn driver() -> Option<DriverCheck> {
    CONTEXT.with(|c| c.driver.get())
}
