//! Noticing that a request's client went away (its process ended) while the request runs,
//! so the request can be cancelled.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::thread::{self, JoinHandle};

use crate::model::Cancel;

/// A thread that sets a request's [`Cancel`] when its client hangs up (the client process
/// ended). It sleeps in `poll` on the connection and on a wake-up socket, so it sees a
/// hang-up at once and stops at once when dropped: no tick, nothing added to a request's
/// time.
pub(crate) struct HangupWatcher {
    /// Dropping it wakes the thread (its peer sees end of file).
    wake: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl HangupWatcher {
    /// Watches `stream` for `cancel`. Without a thread or a socket to spare, the request
    /// runs unwatched (it still ends when its command does), and the log says so.
    pub(crate) fn start(stream: &UnixStream, cancel: &Cancel) -> HangupWatcher {
        let started = (|| {
            let watched = stream.try_clone()?;
            let (wake, woken) = UnixStream::pair()?;
            let cancel = cancel.clone();
            let thread = thread::Builder::new()
                .name("gobs-hangup".into())
                .spawn(move || watch_hangup(&watched, &woken, &cancel))?;
            Ok::<_, std::io::Error>((wake, thread))
        })();
        match started {
            Ok((wake, thread)) => HangupWatcher {
                wake: Some(wake),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!("cannot watch a request's client for hang-ups: {e}");
                HangupWatcher {
                    wake: None,
                    thread: None,
                }
            }
        }
    }
}

impl Drop for HangupWatcher {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sets `cancel` when the peer of `stream` hangs up, until `woken` is readable or closed.
fn watch_hangup(stream: &UnixStream, woken: &UnixStream, cancel: &Cancel) {
    use rustix::event::{PollFd, PollFlags, poll};
    loop {
        // No events asked of the connection: poll reports only a hang-up or an error (a
        // half-close, the client's normal end of writing, is neither).
        let mut fds = [
            PollFd::from_borrowed_fd(stream.as_fd(), PollFlags::empty()),
            PollFd::from_borrowed_fd(woken.as_fd(), PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) if !fds[1].revents().is_empty() => return,
            Ok(_) if fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR) => {
                tracing::info!("the client went away; cancelling its request");
                cancel.cancel();
                return;
            }
            Ok(_) if fds[0].revents().contains(PollFlags::NVAL) => return,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                tracing::warn!("cannot watch a request's client for hang-ups: {e}");
                return;
            }
        }
    }
}
