//! Promise combinators: build one promise out of others (documented on [`Promise`]).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Answer, Promise};
use crate::error::{BoxError, Error};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update below is a plain assignment: a poisoned lock is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh answer and the promise reading it.
fn output<T: Send + 'static>() -> (Arc<Answer<T>>, Promise<T>) {
    let answer = Arc::new(Answer::new());
    (answer.clone(), Promise::from_source(answer))
}

impl<T: Send + 'static> Promise<T> {
    /// Passes the answer to `callback` on whatever thread settles it, outside any turn.
    fn on_settle(self, callback: impl FnOnce(Result<T, Error>) + Send + 'static) {
        self.answer().listen_direct(Box::new(callback));
    }

    /// Reshapes the value without a turn (for the runtime's own plumbing, never user
    /// code).
    pub(crate) fn map_direct<U: Send + 'static>(
        self,
        f: impl FnOnce(T) -> U + Send + 'static,
    ) -> Promise<U> {
        self.then_direct(move |r| r.map(f))
    }

    /// Reshapes the answer without a turn (for the runtime's own plumbing).
    pub(crate) fn then_direct<U: Send + 'static>(
        self,
        f: impl FnOnce(Result<T, Error>) -> Result<U, Error> + Send + 'static,
    ) -> Promise<U> {
        let (out, promise) = output();
        self.on_settle(move |r| out.settle_direct(f(r)));
        promise
    }

    /// A promise for `f(value)`. `f` runs in a turn of its own in the current vat; if it
    /// panics, that turn is rolled back and the returned promise broken. A broken `self`
    /// breaks the result with the same error, and `f` is not called.
    ///
    /// ```
    /// use gobs_runtime::{Vat, actor_lib::Cell};
    /// let vat = Vat::spawn("map").unwrap();
    /// let cell = vat.spawn_actor(Cell::new(20.into())).unwrap();
    /// let doubled = vat
    ///     .run(move || cell.send().get().map(|v| v.as_int().unwrap_or(0) * 2))
    ///     .unwrap();
    /// assert_eq!(doubled.wait().unwrap(), 40);
    /// ```
    pub fn map<U, F>(self, f: F) -> Promise<U>
    where
        U: Send + 'static,
        F: FnOnce(T) -> U + Send + 'static,
    {
        self.then_turn("Promise::map", move |r, _| r.map(f))
    }

    /// Like [`map`](Promise::map) for an `f` that can fail: an `Err` rolls back `f`'s
    /// turn (what it changed, spawned and sent) and breaks the returned promise with
    /// [`Error::Actor`].
    pub fn try_map<U, E, F>(self, f: F) -> Promise<U>
    where
        U: Send + 'static,
        E: Into<BoxError>,
        F: FnOnce(T) -> Result<U, E> + Send + 'static,
    {
        self.then_turn("Promise::try_map", move |r, vat| {
            f(r?).map_err(|e| Error::actor(format!("promise callback in vat \"{vat}\""), e))
        })
    }

    /// Chains a step that itself answers later: `f` runs in a turn of its own in the
    /// current vat and returns a promise; the result settles with *that* promise's answer
    /// (no `Promise<Promise<U>>`).
    ///
    /// ```
    /// use gobs_runtime::{Vat, actor_lib::Cell};
    /// let vat = Vat::spawn("and-then").unwrap();
    /// let a = vat.spawn_actor(Cell::new(1.into())).unwrap();
    /// let b = vat.spawn_actor(Cell::new(2.into())).unwrap();
    /// let both = vat
    ///     .run(move || {
    ///         a.send().get().and_then(move |x| {
    ///             b.send().get().map(move |y| x.as_int().unwrap_or(0) + y.as_int().unwrap_or(0))
    ///         })
    ///     })
    ///     .unwrap();
    /// assert_eq!(both.wait().unwrap(), 3);
    /// ```
    pub fn and_then<U, F>(self, f: F) -> Promise<U>
    where
        U: Send + 'static,
        F: FnOnce(T) -> Promise<U> + Send + 'static,
    {
        self.then_turn("Promise::and_then", move |r, _| r.map(f))
            .flatten()
    }

    /// Every value, in the order given, once all are fulfilled. The first promise to
    /// break breaks the result with its error, without waiting for the rest.
    /// An empty list gives an empty `Vec` at once.
    pub fn all(promises: impl IntoIterator<Item = Promise<T>>) -> Promise<Vec<T>> {
        struct Gather<T: Send + 'static> {
            slots: Vec<Option<T>>,
            left: usize,
            out: Option<Arc<Answer<Vec<T>>>>,
        }
        let promises: Vec<Promise<T>> = promises.into_iter().collect();
        if promises.is_empty() {
            return Promise::fulfilled(Vec::new());
        }
        let (out, promise) = output();
        let gather = Arc::new(Mutex::new(Gather {
            slots: promises.iter().map(|_| None).collect(),
            left: promises.len(),
            out: Some(out),
        }));
        for (i, p) in promises.into_iter().enumerate() {
            let gather = gather.clone();
            p.on_settle(move |r| {
                let mut g = lock(&gather);
                let done = match r {
                    Ok(v) => {
                        if let Some(slot) = g.slots.get_mut(i) {
                            *slot = Some(v);
                        }
                        g.left -= 1;
                        if g.left == 0 {
                            let values = std::mem::take(&mut g.slots).into_iter().flatten();
                            g.out.take().map(|out| (out, Ok(values.collect())))
                        } else {
                            None
                        }
                    }
                    Err(e) => g.out.take().map(|out| (out, Err(e))),
                };
                drop(g);
                if let Some((out, result)) = done {
                    out.settle_direct(result);
                }
            });
        }
        promise
    }

    /// Every answer, in the order given, once all have settled: fulfilled or broken, each
    /// on its own. Never broken itself.
    pub fn all_settled(
        promises: impl IntoIterator<Item = Promise<T>>,
    ) -> Promise<Vec<Result<T, Error>>> {
        Promise::all(
            promises
                .into_iter()
                .map(|p| {
                    let (out, promise) = output();
                    p.on_settle(move |r| out.settle_direct(Ok(r)));
                    promise
                })
                .collect::<Vec<_>>(),
        )
    }

    /// The answer of whichever promise settles first, fulfilled or broken. Over no
    /// promises at all it is broken with [`Error::NoneFulfilled`].
    pub fn race(promises: impl IntoIterator<Item = Promise<T>>) -> Promise<T> {
        let (out, promise) = output();
        let out = Arc::new(Mutex::new(Some(out)));
        let mut count = 0;
        for p in promises {
            count += 1;
            let out = out.clone();
            p.on_settle(move |r| {
                let first = lock(&out).take();
                if let Some(first) = first {
                    first.settle_direct(r);
                }
            });
        }
        if count == 0 {
            return Promise::broken(Error::NoneFulfilled { errors: Vec::new() });
        }
        promise
    }

    /// The value of whichever promise is fulfilled first. Broken only if every one breaks,
    /// with [`Error::NoneFulfilled`] listing their errors in the order given.
    pub fn any(promises: impl IntoIterator<Item = Promise<T>>) -> Promise<T> {
        struct First<T: Send + 'static> {
            errors: Vec<Option<Error>>,
            left: usize,
            out: Option<Arc<Answer<T>>>,
        }
        let promises: Vec<Promise<T>> = promises.into_iter().collect();
        if promises.is_empty() {
            return Promise::broken(Error::NoneFulfilled { errors: Vec::new() });
        }
        let (out, promise) = output();
        let first = Arc::new(Mutex::new(First {
            errors: promises.iter().map(|_| None).collect(),
            left: promises.len(),
            out: Some(out),
        }));
        for (i, p) in promises.into_iter().enumerate() {
            let first = first.clone();
            p.on_settle(move |r| {
                let mut f = lock(&first);
                let done = match r {
                    Ok(v) => f.out.take().map(|out| (out, Ok(v))),
                    Err(e) => {
                        if let Some(slot) = f.errors.get_mut(i) {
                            *slot = Some(e);
                        }
                        f.left -= 1;
                        if f.left == 0 {
                            let errors = std::mem::take(&mut f.errors).into_iter().flatten();
                            let errors = errors.collect();
                            f.out
                                .take()
                                .map(|out| (out, Err(Error::NoneFulfilled { errors })))
                        } else {
                            None
                        }
                    }
                };
                drop(f);
                if let Some((out, result)) = done {
                    out.settle_direct(result);
                }
            });
        }
        promise
    }
}

impl<T: Send + 'static> Promise<Promise<T>> {
    /// The answer of the promise this one resolves to. A message that returns a promise
    /// gives its sender a `Promise<Promise<T>>`; this joins the two (the generated
    /// `send()` methods already do). Broken if either breaks, with that error.
    pub fn flatten(self) -> Promise<T> {
        let (out, promise) = output();
        self.on_settle(move |r| match r {
            Ok(inner) => inner.on_settle(move |r| out.settle_direct(r)),
            Err(e) => out.settle_direct(Err(e)),
        });
        promise
    }
}

/// A tuple of promises that [`join`] can wait for together.
pub trait Join {
    /// The tuple of their values.
    type Output: Send + 'static;
    /// One promise for every value; see [`join`].
    fn join(self) -> Promise<Self::Output>;
}

impl<A: Send + 'static, B: Send + 'static> Join for (Promise<A>, Promise<B>) {
    type Output = (A, B);

    fn join(self) -> Promise<(A, B)> {
        struct Pair<A: Send + 'static, B: Send + 'static> {
            a: Option<A>,
            b: Option<B>,
            out: Option<Arc<Answer<(A, B)>>>,
        }
        impl<A: Send + 'static, B: Send + 'static> Pair<A, B> {
            /// The result to settle with, if this answer decides it.
            #[allow(clippy::type_complexity)]
            fn decide(
                &mut self,
                broken: Option<Error>,
            ) -> Option<(Arc<Answer<(A, B)>>, Result<(A, B), Error>)> {
                if let Some(e) = broken {
                    return self.out.take().map(|out| (out, Err(e)));
                }
                if self.a.is_some() && self.b.is_some() {
                    let (a, b) = (self.a.take()?, self.b.take()?);
                    return self.out.take().map(|out| (out, Ok((a, b))));
                }
                None
            }
        }
        let (out, promise) = output();
        let pair = Arc::new(Mutex::new(Pair {
            a: None,
            b: None,
            out: Some(out),
        }));
        let (pa, pb) = self;
        let for_a = pair.clone();
        pa.on_settle(move |r| {
            let mut p = lock(&for_a);
            let broken = match r {
                Ok(a) => {
                    p.a = Some(a);
                    None
                }
                Err(e) => Some(e),
            };
            let done = p.decide(broken);
            drop(p);
            if let Some((out, result)) = done {
                out.settle_direct(result);
            }
        });
        pb.on_settle(move |r| {
            let mut p = lock(&pair);
            let broken = match r {
                Ok(b) => {
                    p.b = Some(b);
                    None
                }
                Err(e) => Some(e),
            };
            let done = p.decide(broken);
            drop(p);
            if let Some((out, result)) = done {
                out.settle_direct(result);
            }
        });
        promise
    }
}

macro_rules! join_tuples {
    ($(($($p:ident $t:ident),+) + $plast:ident $tlast:ident;)*) => {$(
        impl<$($t: Send + 'static,)+ $tlast: Send + 'static> Join
            for ($(Promise<$t>,)+ Promise<$tlast>)
        {
            type Output = ($($t,)+ $tlast);

            fn join(self) -> Promise<Self::Output> {
                let ($($p,)+ $plast) = self;
                (($($p,)+).join(), $plast)
                    .join()
                    .map_direct(|(($($p,)+), $plast)| ($($p,)+ $plast))
            }
        }
    )*};
}

join_tuples! {
    (a A, b B) + c C;
    (a A, b B, c C) + d D;
    (a A, b B, c C, d D) + e E;
    (a A, b B, c C, d D, e E) + f F;
}

/// One promise for the values of a tuple of promises of different types (2 to 6), in
/// order, once all are fulfilled; broken by the first to break, with its error.
/// Like [`Promise::all`], it runs no user code and works anywhere.
///
/// ```
/// use gobs_runtime::{Promise, join};
/// let (name, age) = join((Promise::fulfilled("Ada"), Promise::fulfilled(36))).wait().unwrap();
/// assert_eq!((name, age), ("Ada", 36));
/// ```
pub fn join<J: Join>(promises: J) -> Promise<J::Output> {
    promises.join()
}
