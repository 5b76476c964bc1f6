//! Where a blocking [`Promise::wait`](super::Promise::wait) would deadlock, and the error it
//! gives there instead of hanging.
//!
//! Two kinds of thread settle promises: a vat's own thread (a turn), which gobs-runtime
//! knows, and an event loop that something else runs — an OCapN node on a current-thread
//! tokio runtime. Blocking either stops the very thing that would answer, so `wait()` asks
//! first. gobs-runtime has no tokio: the crate that runs such a loop marks the thread that
//! drives it ([`mark_driver_thread`]), with a check that says whether it still does.

use crate::error::Error;
use crate::vat;
pub use crate::vat::context::DriverCheck;
use crate::vat::context::{driver, set_driver};

/// Marks this thread as one that drives an event loop settling promises (an OCapN node's
/// tasks on a current-thread runtime): while `check` names it, [`Promise::wait`] here
/// fails with [`Error::WouldDeadlock`] instead of blocking the loop that would answer.
///
/// For crates that run such a loop; cheap enough to call on every poll of it.
///
/// [`Promise::wait`]: super::Promise::wait
pub fn mark_driver_thread(check: DriverCheck) {
    set_driver(Some(check));
}

/// The error `what` (a blocking wait) gives on this thread, or `None` when blocking here is
/// safe.
pub(super) fn refusal(what: &'static str) -> Option<Error> {
    if let Some(vat) = vat::current_vat_name() {
        return Some(Error::WouldBlock { what, vat });
    }
    let check = driver()?;
    match check() {
        Some(driver) => Some(Error::WouldDeadlock { what, driver }),
        None => {
            // The loop has ended on this thread: forget it until marked again.
            set_driver(None);
            None
        }
    }
}
