//! How the worker pool runs a vat: its core is built on its worker, and is this thread's
//! current vat whenever it runs.

use std::sync::Arc;

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
