//! Roots closures that borrow from their caller.
//!
//! [`Registry::start_vat`](super::Registry::start_vat) builds a vat's roots in the vat's
//! first turn, on the vat's worker thread, while the caller blocks for the answer. So the
//! closure may borrow the caller's locals, as `std::thread::scope`'s closures do:
//! [`lend`] hands the closure on as `'static`, and does not return (nor unwind) before the
//! closure has been called or dropped, wherever that happens.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::error::Error;

type Build<'a, R> = Box<dyn FnOnce() -> Result<R, Error> + Send + 'a>;

/// Whether the lent closure is gone (called or dropped).
#[derive(Default)]
struct Returned {
    gone: Mutex<bool>,
    changed: Condvar,
}

/// A borrowing closure made `'static`: [`call`](Lent::call) it, or drop it.
pub(super) struct Lent<R> {
    // Fields drop in order: the closure first, and only then may the caller's frame end.
    build: Build<'static, R>,
    gone: MarkGone,
}

impl<R> Lent<R> {
    /// Calls the closure (its captures are dropped when it returns or unwinds, before
    /// the mark).
    pub(super) fn call(self) -> Result<R, Error> {
        let Lent { build, gone } = self;
        let built = build();
        drop(gone);
        built
    }
}

/// Marks the closure gone when dropped.
struct MarkGone(Arc<Returned>);

impl Drop for MarkGone {
    fn drop(&mut self) {
        *self.0.gone.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.changed.notify_all();
    }
}

/// On drop (return or unwind of [`lend`]), waits until the lent closure is gone.
struct WaitReturned(Arc<Returned>);

impl Drop for WaitReturned {
    fn drop(&mut self) {
        let mut gone = self.0.gone.lock().unwrap_or_else(PoisonError::into_inner);
        while !*gone {
            gone = self
                .0
                .changed
                .wait(gone)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Runs `run` with `build` as a `'static` [`Lent`], then waits until that is called or
/// dropped (by `run`, or on whatever thread it was handed to) before returning.
///
/// `run` must hand the `Lent` only to something that ends, or drops it, without waiting
/// on this thread: otherwise this waits forever (it never returns while the closure may
/// still run).
pub(super) fn lend<'a, R: 'static, T>(
    build: impl FnOnce() -> Result<R, Error> + Send + 'a,
    run: impl FnOnce(Lent<R>) -> T,
) -> T {
    let returned = Arc::new(Returned::default());
    let _wait = WaitReturned(returned.clone());
    let build: Build<'a, R> = Box::new(build);
    // SAFETY: only the trait object's lifetime bound changes (same layout). The closure
    // is used while `'a` lasts: `Lent` is its only owner, and marks it gone only after it
    // is consumed or dropped; `_wait` keeps this frame (inside `'a`, since `build` was
    // passed in) from ending, by return or unwind, before that mark.
    let build = unsafe { std::mem::transmute::<Build<'a, R>, Build<'static, R>>(build) };
    run(Lent {
        build,
        gone: MarkGone(returned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_closure_sent_to_another_thread_borrows_the_callers_locals() {
        let greeting = String::from("hello");
        let got = lend(
            || Ok(greeting.len()),
            |lent| {
                std::thread::spawn(move || lent.call())
                    .join()
                    .unwrap_or_else(|_| {
                        Err(Error::Unanswered {
                            context: "panicked",
                        })
                    })
            },
        );
        assert_eq!(got.ok(), Some(5));
    }

    #[test]
    fn lend_returns_only_after_the_closure_is_gone() {
        let returned = Arc::new((Mutex::new(false), Condvar::new()));
        let seen = returned.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Lent<()>>();
        let holder = std::thread::spawn(move || {
            let lent = rx.recv();
            // A `lend` that did not wait would return now: give it the chance to.
            let (flag, _) = seen
                .1
                .wait_timeout_while(
                    seen.0.lock().unwrap_or_else(PoisonError::into_inner),
                    std::time::Duration::from_millis(100),
                    |returned| !*returned,
                )
                .unwrap_or_else(PoisonError::into_inner);
            let early = *flag;
            drop(flag);
            drop(lent);
            early
        });
        lend(|| Ok(()), move |lent| tx.send(lent).is_ok());
        *returned.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        returned.1.notify_all();
        assert_eq!(
            holder.join().ok(),
            Some(false),
            "lend returned while its closure was still alive"
        );
    }
}
