//! Which threads run a live node's tasks on a current-thread tokio runtime: a blocking
//! `Promise::wait` there would stop the node that is to answer it, so it fails instead
//! (see [`gobs_runtime::mark_driver_thread`]).

use std::cell::RefCell;
use std::sync::{Arc, Weak};

thread_local! {
    /// The nodes whose tasks run on this thread, while they live.
    static DRIVEN: RefCell<Vec<Weak<()>>> = const { RefCell::new(Vec::new()) };
}

/// Lives as long as a node's task: this thread stops counting as its driver when it goes.
pub(super) type Alive = Arc<()>;

/// Marks this thread as running the node `alive` stands for, if it runs a current-thread
/// runtime (whose tasks all run on the thread that drives it).
pub(super) fn mark(alive: &Alive) {
    if current_thread_runtime().is_none() {
        return;
    }
    DRIVEN.with(|d| {
        let mut d = d.borrow_mut();
        d.retain(|w| w.strong_count() > 0);
        if !d.iter().any(|w| w.as_ptr() == Arc::as_ptr(alive)) {
            d.push(Arc::downgrade(alive));
        }
    });
    gobs_runtime::mark_driver_thread(drives_a_node);
}

/// Whether this thread, now, runs a current-thread runtime with a live node on it.
fn drives_a_node() -> Option<&'static str> {
    current_thread_runtime()?;
    DRIVEN
        .with(|d| d.borrow().iter().any(|w| w.strong_count() > 0))
        .then_some("the current-thread tokio runtime that runs the OCapN node")
}

fn current_thread_runtime() -> Option<()> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    (handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread).then_some(())
}
