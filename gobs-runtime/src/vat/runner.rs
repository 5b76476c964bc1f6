//! How the worker pool runs a vat: its core is built on its worker, and is this thread's
//! current vat whenever it runs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::error::Error;
use crate::pool::{self, Activation, After, Runnable};
use crate::vat::context;
use crate::vat::core::VatCore;
use crate::vat::shared::{Sched, VatShared, lock};

/// What a persistent vat runs on its worker before its first turn.
pub(crate) type Setup = Box<dyn FnOnce(&VatCore) + Send>;

impl Runnable for VatCore {
    fn run(&self) -> After {
        context::enter(self, || self.activate())
    }

    fn name(&self) -> &str {
        &self.shared.name
    }

    fn abandon(&self, reason: &str) {
        context::enter(self, || self.halt(Some(reason.to_string())));
    }
}

/// Starts `shared` on its worker: `setup` (which may install persistence and queue first
/// turns) runs there before any message.
pub(crate) fn start(shared: &Arc<VatShared>, setup: Setup) {
    let mut inbox = lock(&shared.inbox);
    if inbox.state != Sched::Unstarted {
        return;
    }
    inbox.state = Sched::Scheduled;
    drop(inbox);
    let for_worker = shared.clone();
    let build = move || {
        let core = Box::new(VatCore::new(for_worker));
        let started = context::enter(&core, || core.start(setup));
        (core as Box<dyn Runnable>, started)
    };
    pool::submit(shared.worker, Activation::Start(shared.id, Box::new(build)));
}

/// Starts `shared` on the calling thread, then hands it to its worker: `setup` runs here,
/// then `first` as the vat's first turn, whose answer comes straight back. Nothing of
/// `first` needs to be `'static` or `Send`: it runs before this returns, on this stack
/// (how [`Registry::start_vat`](crate::Registry::start_vat)'s roots borrow the caller's
/// locals). Messages sent to the vat meanwhile wait in its inbox, behind the first turn.
pub(crate) fn start_here<R>(
    shared: &Arc<VatShared>,
    setup: impl FnOnce(&VatCore),
    first: impl FnOnce() -> Result<R, Error>,
) -> Result<R, Error> {
    {
        let mut inbox = lock(&shared.inbox);
        if inbox.state != Sched::Unstarted {
            drop(inbox);
            return Err(shared.stopped_error());
        }
        // The worker may not run it before it arrives; senders only queue meanwhile.
        inbox.state = Sched::Scheduled;
    }
    let core = Box::new(VatCore::new(shared.clone()));
    let answer = context::enter(&core, || {
        if core.start(setup) {
            core.run_inline(first)
        } else {
            Err(shared.stopped_error())
        }
    });
    if shared.is_stopped() {
        // Setup or the first turn could not go on: halted already, nothing to run.
        if catch_unwind(AssertUnwindSafe(move || drop(core))).is_err() {
            tracing::error!(vat = %shared.name, "dropping the actors of a stopped vat panicked");
        }
        return answer;
    }
    let core = Handover(core);
    // A method call, so that the closure captures the whole `Handover`, not its field.
    let build = move || (core.into_runnable(), true);
    pool::submit(shared.worker, Activation::Start(shared.id, Box::new(build)));
    answer
}

/// A core started on one thread, on its way to the worker it lives on from then on.
struct Handover(Box<VatCore>);

impl Handover {
    fn into_runnable(self) -> Box<dyn Runnable> {
        self.0
    }
}

// SAFETY: a `VatCore` is not `Send` because of what it owns: `Rc`s (its slots, the
// journal's snapshots, the sleep reviver) and trait objects with no `Send` bound (the
// persistence hook, deferred effects, emptied snapshot boxes). A `Handover` is made only
// by `start_here`, from a core built on its thread, after `context::enter` has returned
// (this thread's current-vat pointer is put back, so nothing here points at the core)
// and after its first turn committed or rolled back (deferred effects ran or were
// dropped, the journal holds no snapshot, and no near call holds a slot clone: those end
// with their call). So every `Rc` into the core is inside it and moves with it, and no
// other thread touches it on the way: the worker's queue (a mutex) orders the hand-over,
// and it is used on its worker only. What actors hold is `Send` (`AnyActor: Send`), as
// are tasks' futures.
unsafe impl Send for Handover {}
