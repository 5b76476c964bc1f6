//! Where a blocking [`Promise::wait`](super::Promise::wait) would deadlock, and the error it
//! gives there instead of hanging.
//!
//! Two kinds of thread settle promises: a vat's own thread (a turn), which gobs-runtime
//! knows, and an event loop that something else runs — an OCapN node on a current-thread
//! tokio runtime. Blocking either stops the very thing that would answer, so `wait()` asks
//! first. gobs-runtime has no tokio: the crate that runs such a loop marks the thread that
//! drives it ([`mark_driver_thread`]), with a check that says whether it still does.

use std::sync::PoisonError;

use super::Promise;
use crate::answer::{Listener, State, lock};
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
fn refusal(what: &'static str) -> Option<Error> {
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

/// Blocking waits, which ask `refusal` first.
impl<T: Send + 'static> Promise<T> {
    /// Blocks this thread until the promise settles.
    ///
    /// For `main`, tests and other threads that run nothing else (see
    /// [blocking or async](Promise#blocking-or-async-one-rule)). Inside a turn this returns
    /// [`Error::WouldBlock`] (use [`then`](Promise::then)); on a thread that drives an
    /// OCapN node, [`Error::WouldDeadlock`] (`.await` it).
    pub fn wait(self) -> Result<T, Error> {
        if let Some(refused) = refusal("Promise::wait") {
            return Err(refused);
        }
        self.block()
    }

    /// Like [`wait`](Promise::wait), giving up after `timeout` (the promise comes back).
    pub fn wait_timeout(self, timeout: std::time::Duration) -> Result<Result<T, Error>, Self> {
        if let Some(refused) = refusal("Promise::wait_timeout") {
            return Ok(Err(refused));
        }
        let deadline = std::time::Instant::now() + timeout;
        let mut state = lock(&self.answer().state);
        loop {
            if let State::Done(_) = &*state
                && let State::Done(r) = std::mem::replace(&mut *state, State::Taken)
            {
                return Ok(r.map_err(|e| *e));
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                drop(state);
                return Err(self);
            }
            if let State::Pending { listener, .. } = &mut *state {
                *listener = Listener::Thread;
            }
            state = self
                .answer()
                .ready
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
