//! Runs a future on whichever thread wakes it: polled once now, then again by the waker
//! itself, with no executor and so no hand-off to another thread. For futures that need
//! no runtime (a gobs promise's answer): the vat thread that settles it runs what comes
//! next, such as writing the answer to the peer's socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

type Boxed = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Polls `fut` now and on every wake, on the waking thread, until it completes.
pub(crate) fn run_inline(fut: impl Future<Output = ()> + Send + 'static) {
    Arc::new(Inline {
        fut: Mutex::new(Some(Box::pin(fut))),
        again: AtomicBool::new(false),
    })
    .poll();
}

struct Inline {
    /// `None` once complete.
    fut: Mutex<Option<Boxed>>,
    /// A wake came while another thread (or this one, re-entrantly) was polling: the
    /// poller polls once more before it lets go.
    again: AtomicBool,
}

impl Inline {
    fn poll(self: Arc<Self>) {
        // Set before trying the lock, so that a poller about to let go sees it.
        self.again.store(true, Ordering::SeqCst);
        let waker = Waker::from(self.clone());
        while self.again.load(Ordering::SeqCst) {
            let Ok(mut slot) = self.fut.try_lock() else {
                return;
            };
            self.again.store(false, Ordering::SeqCst);
            if let Some(fut) = slot.as_mut()
                && fut
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
            {
                *slot = None;
            }
        }
    }
}

impl Wake for Inline {
    fn wake(self: Arc<Self>) {
        self.poll();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn completes_on_the_thread_that_settles_the_promise() {
        let (promise, resolver) = gobs_runtime::Promise::<u32>::pair();
        let (tx, rx) = mpsc::channel();
        run_inline(async move {
            let n = promise.await.unwrap();
            tx.send((n, std::thread::current().id()))
                .unwrap_or_default();
        });
        let settler = std::thread::spawn(move || {
            resolver.fulfill(7);
            std::thread::current().id()
        });
        let settler = settler.join().expect("the settling thread ran");
        assert_eq!(rx.recv().ok(), Some((7, settler)));
    }

    #[test]
    fn a_ready_future_completes_at_once() {
        let (tx, rx) = mpsc::channel();
        run_inline(async move { tx.send(1).unwrap() });
        assert_eq!(rx.try_recv().ok(), Some(1));
    }
}
