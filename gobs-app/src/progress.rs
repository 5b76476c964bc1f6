//! Progress of long work (making or taking down a machine): the steps a provider goes
//! through, on their way from the thread that does the work to whoever shows them.
//!
//! ```text
//! provider (off the vat) ─▶ Progress ─▶ Steps ─▶ daemon connection ─▶ progress frames ─▶ CLI
//!                                             └─▶ the command line itself (embedded)
//! ```
//!
//! A [`Progress`] is the reporter: it lets its holder report the steps of one piece of work
//! and nothing else. Whoever asks for the work makes the pair ([`Progress::pair`]) and hands
//! the reporter down with the request ([`Watch`]): the backend gives it to the boss, the
//! boss to the provider, whose provisioning and teardown report from the threads they run
//! on. [`Steps`] is the watcher's end.
//!
//! **Reporting never waits and holds bounded memory**: at most [`WINDOW`] steps wait for
//! the watcher, each cut at [`MAX_STEP`] bytes; a step past the window drops the oldest one
//! waiting, and the next step read says how many were dropped. So a watcher that reads
//! slowly (a stalled client, a slow terminal) costs the work nothing, and a watcher that
//! went away costs nothing at all. [`Progress::none`] reports to no one.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::text::floor_char_boundary;

/// Steps that may wait for a slow watcher; past them the oldest is dropped.
pub const WINDOW: usize = 16;

/// Longest step, in bytes (longer ones are cut).
pub const MAX_STEP: usize = 200;

/// One step of the work, as the watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What the work is doing from now on ("booting the VM").
    pub step: String,
    /// When the step began, in milliseconds since the work did.
    pub elapsed_ms: u64,
    /// Steps dropped just before this one because the watcher was behind.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The reporter of one piece of work's steps (see the module docs). Clones report to the
/// same watcher.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Shared>>);

/// The watcher's end of a [`Progress`].
pub struct Steps(Arc<Shared>);

struct Shared {
    started: Instant,
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    steps: VecDeque<Step>,
    /// The work is over ([`Progress::finish`]) or the watcher went away.
    closed: bool,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Progress {
    /// A reporter and its watcher's end, for one piece of work beginning now.
    pub fn pair() -> (Progress, Steps) {
        let shared = Arc::new(Shared {
            started: Instant::now(),
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        (Progress(Some(shared.clone())), Steps(shared))
    }

    /// A reporter whose steps no one watches.
    pub fn none() -> Progress {
        Progress(None)
    }

    /// Reports that the work is now at `step` (a few words: "building the root
    /// filesystem"). Never waits.
    pub fn step(&self, step: impl Into<String>) {
        let Some(shared) = &self.0 else {
            return;
        };
        let mut step: String = step.into();
        if step.len() > MAX_STEP {
            step.truncate(floor_char_boundary(&step, MAX_STEP));
            step.push('…');
        }
        let elapsed_ms = u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(elapsed_ms, "{step}");
        let mut queue = shared.queue();
        if queue.closed {
            return;
        }
        if queue.steps.len() >= WINDOW
            && let Some(dropped) = queue.steps.pop_front()
            && let Some(next) = queue.steps.front_mut()
        {
            next.skipped += 1 + dropped.skipped;
        }
        queue.steps.push_back(Step {
            step,
            elapsed_ms,
            skipped: 0,
        });
        drop(queue);
        shared.changed.notify_all();
    }

    /// The work is over: the watcher reads what is left, then the end.
    pub fn finish(&self) {
        if let Some(shared) = &self.0 {
            shared.queue().closed = true;
            shared.changed.notify_all();
        }
    }
}

impl Steps {
    /// The next step, waiting for it at most `patience`: `Ok(None)` once the work is over
    /// and every step was read, `Err(())` if none came in time.
    #[allow(clippy::result_unit_err)]
    pub fn next(&self, patience: Duration) -> Result<Option<Step>, ()> {
        let deadline = Instant::now() + patience;
        let mut queue = self.0.queue();
        loop {
            if let Some(step) = queue.steps.pop_front() {
                return Ok(Some(step));
            }
            if queue.closed {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(());
            }
            queue = self
                .0
                .changed
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Steps {
    /// No one watches any more: what is reported from now on is dropped at once.
    fn drop(&mut self) {
        let mut queue = self.0.queue();
        queue.closed = true;
        queue.steps.clear();
    }
}

/// Does `work` on a thread of its own, given a reporter watched from here: each step goes
/// to `on_step` on this thread as it comes, until the work is over (then answers what it
/// answered) or `on_step` answers false (the watcher went away: later steps are dropped).
pub fn watched<T: Send>(
    work: impl FnOnce(Progress) -> T + Send,
    mut on_step: impl FnMut(Step) -> bool,
) -> std::thread::Result<T> {
    /// How long a wait for the next step lasts before it begins again (the end of the work
    /// wakes it at once).
    const PATIENCE: Duration = Duration::from_secs(3600);
    let (progress, steps) = Progress::pair();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let answer = work(progress.clone());
            progress.finish();
            answer
        });
        loop {
            match steps.next(PATIENCE) {
                Ok(Some(step)) => {
                    if !on_step(step) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(()) => {}
            }
        }
        drop(steps);
        worker.join()
    })
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "Progress(watched)",
            None => "Progress(none)",
        })
    }
}

impl PartialEq for Progress {
    fn eq(&self, other: &Progress) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for Progress {}

/// A request's progress: whether its client watches it (all that travels, as
/// `"progress":true`; absent, it is not watched, as with an older client) and, inside a
/// process, the reporter its steps go to (set by whoever shows them: the daemon's
/// connection, or the command line embedded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    asked: bool,
    to: Progress,
}

impl Watch {
    /// A request whose client watches its progress (what the command line sends).
    pub fn asked() -> Watch {
        Watch {
            asked: true,
            to: Progress::none(),
        }
    }

    /// Whether the client asked to watch.
    pub fn is_asked(&self) -> bool {
        self.asked
    }

    /// Whether the client did not ask (the field is then left out of the request).
    pub fn is_unasked(&self) -> bool {
        !self.asked
    }

    /// Sends the steps to `to`.
    pub fn report_to(&mut self, to: Progress) {
        self.to = to;
    }

    /// Where the steps go: nowhere unless [`Watch::report_to`] said.
    pub fn reporter(&self) -> Progress {
        self.to.clone()
    }
}

impl Serialize for Watch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(self.asked)
    }
}

impl<'de> Deserialize<'de> for Watch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Watch {
            asked: bool::deserialize(deserializer)?,
            to: Progress::none(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn steps_arrive_in_order_then_the_end() {
        let (progress, steps) = Progress::pair();
        progress.step("provisioning");
        progress.clone().step("booting");
        let names: Vec<String> = (0..2)
            .map(|_| steps.next(NOW).unwrap().unwrap().step)
            .collect();
        assert_eq!(names, ["provisioning", "booting"]);
        assert_eq!(steps.next(NOW), Err(()));
        progress.finish();
        assert_eq!(steps.next(NOW), Ok(None));
    }

    #[test]
    fn a_watcher_that_does_not_read_holds_a_window_and_learns_what_it_missed() {
        let (progress, steps) = Progress::pair();
        let reported = 100_000;
        for i in 0..reported {
            progress.step(format!("step {i}"));
        }
        progress.finish();
        let mut seen = Vec::new();
        while let Some(step) = steps.next(NOW).unwrap() {
            seen.push(step);
        }
        assert_eq!(seen.len(), WINDOW);
        assert_eq!(seen.last().unwrap().step, format!("step {}", reported - 1));
        let accounted: u64 = seen.iter().map(|s| 1 + s.skipped).sum();
        assert_eq!(accounted, reported);
    }

    #[test]
    fn a_watcher_that_went_away_costs_nothing_and_no_one_is_told_nothing() {
        let (progress, steps) = Progress::pair();
        drop(steps);
        progress.step("after the watcher left");
        let shared = progress.0.as_ref().unwrap();
        assert!(shared.queue().steps.is_empty());
        Progress::none().step("to no one");
        Progress::none().finish();
    }

    #[test]
    fn long_steps_are_cut() {
        let (progress, steps) = Progress::pair();
        progress.step("é".repeat(MAX_STEP));
        let step = steps.next(NOW).unwrap().unwrap().step;
        assert!(step.len() <= MAX_STEP + '…'.len_utf8(), "{}", step.len());
        assert!(step.ends_with('…'));
    }

    #[test]
    fn a_waiting_watcher_is_woken_by_a_step_from_another_thread() {
        let (progress, steps) = Progress::pair();
        let reporter = std::thread::spawn(move || {
            progress.step("from the provider's thread");
            progress.finish();
        });
        let step = steps.next(Duration::from_secs(60)).unwrap().unwrap();
        assert_eq!(step.step, "from the provider's thread");
        assert_eq!(steps.next(Duration::from_secs(60)), Ok(None));
        reporter.join().unwrap();
    }

    #[test]
    fn watched_work_hands_its_steps_over_and_answers() {
        let mut seen = Vec::new();
        let answer = watched(
            |progress| {
                progress.step("one");
                progress.step("two");
                42
            },
            |step| {
                seen.push(step.step);
                true
            },
        );
        assert_eq!(answer.unwrap(), 42);
        assert_eq!(seen, ["one", "two"]);
        // A watcher that goes away at its first step does not hold the work up.
        let mut calls = 0;
        let answer = watched(
            |progress| {
                for i in 0..10_000 {
                    progress.step(format!("{i}"));
                }
                "done"
            },
            |_| {
                calls += 1;
                false
            },
        );
        assert_eq!(answer.unwrap(), "done");
        assert!(calls <= 1, "{calls}");
    }

    #[test]
    fn only_whether_it_is_watched_travels() {
        let mut watch = Watch::asked();
        watch.report_to(Progress::pair().0);
        assert_eq!(serde_json::to_string(&watch).unwrap(), "true");
        let back: Watch = serde_json::from_str("true").unwrap();
        assert!(back.is_asked());
        assert_eq!(back.reporter(), Progress::none());
        assert!(Watch::default().is_unasked());
    }
}
