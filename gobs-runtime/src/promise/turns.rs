//! How a promise meets turns: a callback registered inside a turn runs later in a turn of
//! its own in the same vat, and an answer given inside a turn is published only when that
//! turn commits (a failed turn breaks its promises instead of leaking a half-done answer).

use std::sync::Arc;

use super::{Answer, Promise, Resolver};
use crate::error::Error;
use crate::job;
use crate::vat;

impl<T: Send + 'static> Promise<T> {
    /// Runs `callback` with the answer, later, in a turn of its own in the current vat.
    ///
    /// Returns a promise for what the callback returns; if the callback panics, that
    /// promise is broken and the callback's turn is rolled back. Must be called inside a
    /// turn; elsewhere the returned promise is broken with [`Error::NotInTurn`].
    /// The callback is registered only if the current turn commits.
    pub fn then<U, F>(self, callback: F) -> Promise<U>
    where
        U: Send + 'static,
        F: FnOnce(Result<T, Error>) -> U + Send + 'static,
    {
        self.then_try(move |r| Ok::<U, std::convert::Infallible>(callback(r)))
    }

    /// Like [`then`](Promise::then), for a callback that can fail: an `Err` rolls the
    /// callback's turn back and breaks the returned promise with it.
    pub fn then_try<U, E, F>(self, callback: F) -> Promise<U>
    where
        U: Send + 'static,
        E: Into<crate::error::BoxError>,
        F: FnOnce(Result<T, Error>) -> Result<U, E> + Send + 'static,
    {
        self.then_turn("Promise::then", move |result, vat_name| {
            callback(result)
                .map_err(|e| Error::actor(format!("promise callback in vat \"{vat_name}\""), e))
        })
    }

    /// Runs `callback` in a turn of its own in the current vat once this settles; its
    /// `Err` rolls that turn back and breaks the returned promise with the error as it is.
    /// The callback also gets the vat's name, for errors. Registered when the current
    /// turn commits; outside a turn the returned promise is broken with `NotInTurn`.
    pub(crate) fn then_turn<U, F>(self, what: &'static str, callback: F) -> Promise<U>
    where
        U: Send + 'static,
        F: FnOnce(Result<T, Error>, &str) -> Result<U, Error> + Send + 'static,
    {
        let Some(vat) = vat::current_vat_shared() else {
            return Promise::broken(Error::NotInTurn {
                what,
                fix: "register callbacks from inside an actor method or `Vat::run`; \
                      outside vats use `wait()` or `.await`",
            });
        };
        let vat_name = vat.name.clone();
        let (env_slot, answer) = job::pending::<U>();
        // A callback waiting to run keeps its vat running.
        let keep = vat::Keep::new(&vat);
        let callback = Box::new(move |result| {
            let env = env_slot.fill(move || {
                let r = callback(result, &vat_name);
                drop(keep);
                r
            });
            vat::deliver(&vat, env);
        });
        let inner = self.inner;
        vat::defer(Box::new(move || inner.answer().listen(callback)));
        Promise::from_source(answer)
    }
}

impl<T: Send + 'static> Resolver<T> {
    /// Fulfils the promise. Inside a turn, the answer is published when the turn commits.
    pub fn fulfill(mut self, value: T) {
        if let Some(inner) = self.inner.take() {
            settle_in_turn(inner, Ok(value));
        }
    }

    /// Breaks the promise with `error`. Inside a turn, when the turn commits.
    pub fn break_with(mut self, error: Error) {
        if let Some(inner) = self.inner.take() {
            settle_in_turn(inner, Err(error));
        }
    }

    /// Fulfils or breaks the promise with `result`: passes another promise's answer on.
    /// Inside a turn, when the turn commits.
    pub fn settle(self, result: Result<T, Error>) {
        match result {
            Ok(value) => self.fulfill(value),
            Err(error) => self.break_with(error),
        }
    }
}

fn settle_in_turn<T: Send + 'static>(inner: Arc<Answer<T>>, result: Result<T, Error>) {
    if vat::in_turn() {
        vat::defer(Box::new(move || inner.settle(result)));
    } else {
        inner.settle(result);
    }
}
