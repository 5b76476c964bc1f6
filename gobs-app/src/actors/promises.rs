//! Promise combinators the actors of gobs-app need: [`flatten`] a promise of a promise, wait
//! for [`all`] of several. Both register callbacks, so they are called inside a turn; the
//! promises they return settle in later turns of the same vat.
//!
//! (Candidates for `gobs_runtime::Promise` itself; kept here until the runtime has them.)

use std::sync::{Arc, Mutex, PoisonError};

use gobs_runtime::{Error, Promise, Resolver};

/// The answer of the promise `outer` resolves to. Call inside a turn.
///
/// An actor method that starts slow work returns a promise; sending to it gives a promise of
/// that promise. This joins the two.
pub fn flatten<T: Send + 'static>(outer: Promise<Promise<T>>) -> Promise<T> {
    let (promise, resolver) = Promise::pair();
    let _ = outer.then(move |result| match result {
        Ok(inner) => {
            let _ = inner.then(move |result| settle(resolver, result));
        }
        Err(e) => resolver.break_with(e),
    });
    promise
}

/// Every answer of `promises`, in order, once all have settled. Call inside a turn.
pub fn all<T: Send + 'static>(promises: Vec<Promise<T>>) -> Promise<Vec<Result<T, Error>>> {
    if promises.is_empty() {
        return Promise::fulfilled(Vec::new());
    }
    struct Gather<T: Send + 'static> {
        answers: Vec<Option<Result<T, Error>>>,
        left: usize,
        resolver: Option<Resolver<Vec<Result<T, Error>>>>,
    }
    let (promise, resolver) = Promise::pair();
    let gather = Arc::new(Mutex::new(Gather {
        answers: promises.iter().map(|_| None).collect(),
        left: promises.len(),
        resolver: Some(resolver),
    }));
    for (i, p) in promises.into_iter().enumerate() {
        let gather = gather.clone();
        let _ = p.then(move |result| {
            // Every callback runs on the one thread of this vat: the lock is never contended.
            let mut g = gather.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = g.answers.get_mut(i) {
                *slot = Some(result);
            }
            g.left = g.left.saturating_sub(1);
            if g.left == 0
                && let Some(resolver) = g.resolver.take()
            {
                let answers = std::mem::take(&mut g.answers)
                    .into_iter()
                    .map(|a| {
                        a.unwrap_or(Err(Error::Unanswered {
                            context: "promises::all lost an answer",
                        }))
                    })
                    .collect();
                resolver.fulfill(answers);
            }
        });
    }
    promise
}

/// Passes `result` on to `resolver`.
pub fn settle<T: Send + 'static>(resolver: Resolver<T>, result: Result<T, Error>) {
    match result {
        Ok(value) => resolver.fulfill(value),
        Err(e) => resolver.break_with(e),
    }
}

/// What an error says, without the "`Actor#3 in vat "x"` failed:" prefix the runtime puts in
/// front of an actor's own error: for messages shown to people.
pub fn reason(error: &Error) -> String {
    match error {
        Error::Actor { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use gobs_runtime::{Vat, spawn_blocking};

    #[test]
    fn flatten_joins_nested_promises_and_passes_errors_on() {
        let vat = Vat::spawn("flatten").unwrap();
        let p = vat
            .run(|| flatten(Promise::fulfilled(spawn_blocking(|| 6 * 7))))
            .unwrap();
        assert_eq!(p.wait().unwrap(), 42);
        let p = vat
            .run(|| {
                flatten(Promise::<Promise<u8>>::broken(Error::VatStopped {
                    vat: "outer broke".into(),
                }))
            })
            .unwrap();
        assert!(p.wait().unwrap_err().to_string().contains("outer broke"));
        vat.shutdown();
    }

    #[test]
    fn all_keeps_order_and_each_answer() {
        let vat = Vat::spawn("all").unwrap();
        let p = vat
            .run(|| {
                all(vec![
                    spawn_blocking(|| {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        1
                    }),
                    Promise::broken(Error::VatStopped { vat: "two".into() }),
                    Promise::fulfilled(3),
                ])
            })
            .unwrap();
        let answers = p.wait().unwrap();
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0].as_ref().unwrap(), &1);
        assert!(answers[1].is_err());
        assert_eq!(answers[2].as_ref().unwrap(), &3);
        let empty = vat.run(|| all(Vec::<Promise<u8>>::new())).unwrap();
        assert!(empty.wait().unwrap().is_empty());
        vat.shutdown();
    }
}
