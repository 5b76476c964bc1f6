//! Making a job: the envelope that carries its work and the source of its answer (which
//! a promise wraps), with the work now, or later for a [`PendingJob`].

use std::sync::Arc;

use super::{Envelope, Work, WorkJob};
use crate::answer::Source;
use crate::error::Error;

/// The answer side of a job, which a [`Promise`](crate::Promise) wraps.
pub(crate) type Answered<T> = Arc<dyn Source<T>>;

/// A job for `work`, and the source of its answer (for a promise).
pub(crate) fn job<T, F>(work: F) -> (Envelope, Answered<T>)
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    make::<T, F, Error>(work)
}

/// [`job`] for work whose error comes boxed (every send's path: see [`Job::run`]).
pub(crate) fn job_boxed<T, F>(work: F) -> (Envelope, Answered<T>)
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Box<Error>> + Send + 'static,
{
    make::<T, F, Box<Error>>(work)
}

fn make<T, F, E>(work: F) -> (Envelope, Answered<T>)
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
    E: Into<Box<Error>> + 'static,
{
    let job = Arc::new(WorkJob::<T, F, E>::new(Work::Todo(work)));
    let answer: Answered<T> = job.clone();
    (Envelope::new(job), answer)
}

type BoxWork<T> = Box<dyn FnOnce() -> Result<T, Error> + Send>;

/// A job whose work is known only later (a promise callback, once its value arrives);
/// its promise exists now.
pub(crate) struct PendingJob<T: Send + 'static> {
    job: Option<Arc<WorkJob<T, BoxWork<T>>>>,
}

pub(crate) fn pending<T: Send + 'static>() -> (PendingJob<T>, Answered<T>) {
    let job = Arc::new(WorkJob::new(Work::None));
    let answer: Answered<T> = job.clone();
    (PendingJob { job: Some(job) }, answer)
}

impl<T: Send + 'static> PendingJob<T> {
    /// Supplies the work and returns the envelope that will run it.
    pub(crate) fn fill(
        mut self,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Envelope {
        match self.job.take() {
            Some(job) => {
                // SAFETY: no envelope exists yet, and this `PendingJob` is the only other
                // owner that touches `work` (see the `Sync` impl).
                unsafe { *job.work.get() = Work::Todo(Box::new(work)) };
                Envelope::new(job)
            }
            None => Envelope::empty(),
        }
    }
}

impl<T: Send + 'static> PendingJob<T> {
    /// Breaks the promise with `error`: the work will never be known.
    pub(crate) fn fail(mut self, error: Error) {
        if let Some(job) = self.job.take() {
            job.answer().fail(error);
        }
    }
}

impl<T: Send + 'static> Drop for PendingJob<T> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            job.answer().fail(Error::Unanswered {
                context: "the promise it waited on was never settled",
            });
        }
    }
}
