//! A message as it waits in a queue: two words.
//!
//! Queues hold every message of a busy vat (a turn's effects, the local queue, the
//! inbox), so their size is memory traffic on every send: a million messages queued by one
//! turn are tens of megabytes. An [`Envelope`] keeps one word of room, which holds a job
//! (a thin `Arc` of its concrete type), a closure sent without a promise that fits there
//! (a send's closure is usually its target's hold and a function item), or a box of a
//! larger one, beside the function that takes it out again as a [`Message`].

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;
use std::sync::Arc;

use super::told::Told;
use super::{Job, Message, Ticket, fail};
use crate::error::Error;

/// Room for a message's work, in place.
type Room = MaybeUninit<usize>;

/// A message on its way to a vat: owns its work until the work runs.
pub(crate) struct Envelope {
    room: Room,
    /// Takes what `room` holds out, as what it is: made for its type by the one
    /// constructor that filled `room`; called once (by `open`), which empties it.
    open: unsafe fn(*mut Room) -> Option<Message>,
}

// SAFETY: `room` holds an `Arc` of a `Job` (which is `Send + Sync`), a closure that is
// `Send` (the bound of `Envelope::told`), a box of one, or nothing; `open` is a plain
// function pointer.
unsafe impl Send for Envelope {}

impl Envelope {
    /// An envelope for a job.
    pub(crate) fn new<J: Job + 'static>(job: Arc<J>) -> Self {
        Envelope::in_place(job, open_job::<J>)
    }

    /// An envelope for work sent without a promise (no allocation when it is small).
    pub(crate) fn told<F>(work: F) -> Self
    where
        F: FnOnce() -> Result<(), Box<Error>> + Send + 'static,
    {
        if fits::<F>() {
            Envelope::in_place(work, open_told::<F>)
        } else {
            let work = Box::new(work);
            Envelope::in_place(work, open_told::<Box<F>>)
        }
    }

    /// An envelope whose work went elsewhere: taking it out gives nothing.
    pub(crate) fn empty() -> Self {
        Envelope {
            room: Room::uninit(),
            open: open_nothing,
        }
    }

    /// Stores `value` in `room`, to be taken out by `open`, which must be made for a `V`.
    fn in_place<V>(value: V, open: unsafe fn(*mut Room) -> Option<Message>) -> Self {
        assert!(
            fits::<V>(),
            "what an envelope holds in place must fit its room"
        );
        let mut room = Room::uninit();
        // SAFETY: `room` is large and aligned enough for a `V` (asserted above), and
        // nothing is in it yet.
        unsafe { ptr::write(room.as_mut_ptr().cast::<V>(), value) };
        Envelope { room, open }
    }

    /// Takes the work out, once: the envelope is not dropped afterwards.
    fn open(self) -> Option<Message> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `open` was made for what `room` holds, and it runs once: `this` is not
        // dropped, so `Drop` does not open it again.
        unsafe { (this.open)(&mut this.room) }
    }

    /// Takes the work out to run it; the envelope then owes nothing. The [`Ticket`] is
    /// not `Clone` and running it consumes it: a job runs at most once, by type.
    pub(crate) fn take(self) -> Option<Ticket> {
        self.open().map(|work| Ticket { work })
    }

    /// Breaks the job's promise without running it.
    pub(crate) fn fail(self, error: Error) {
        if let Some(work) = self.open() {
            fail(work, error);
        }
    }
}

impl Drop for Envelope {
    fn drop(&mut self) {
        // SAFETY: as in `open`: `take` and `fail` consume the envelope without dropping
        // it, so this is the one time its room is opened.
        let work = unsafe { (self.open)(&mut self.room) };
        // Never handled: the vat stopped with this message still queued.
        if let Some(work) = work {
            fail(
                work,
                Error::Unanswered {
                    context: "the vat stopped before handling the message",
                },
            );
        }
    }
}

/// Whether a `V` fits in a [`Room`].
const fn fits<V>() -> bool {
    size_of::<V>() <= size_of::<Room>() && align_of::<V>() <= align_of::<Room>()
}

/// # Safety
/// `room` holds an `Arc<J>`, not taken out before; afterwards it holds nothing.
unsafe fn open_job<J: Job + 'static>(room: *mut Room) -> Option<Message> {
    // SAFETY: the caller's promise.
    let job = unsafe { ptr::read(room.cast::<Arc<J>>()) };
    Some(Message::Job(job))
}

/// # Safety
/// `room` holds a `G`, not taken out before; afterwards it holds nothing.
unsafe fn open_told<G>(room: *mut Room) -> Option<Message>
where
    G: FnOnce() -> Result<(), Box<Error>> + Send + 'static,
{
    // SAFETY: the caller's promise.
    let work = unsafe { ptr::read(room.cast::<G>()) };
    Some(Message::Told(Told::new(work)))
}

/// # Safety
/// None needed: the room of an empty envelope holds nothing.
unsafe fn open_nothing(_: *mut Room) -> Option<Message> {
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Envelope;
    use crate::error::Error;

    #[test]
    fn an_envelope_is_two_words() {
        assert_eq!(size_of::<Envelope>(), 2 * size_of::<usize>());
    }

    #[test]
    fn work_that_fits_and_work_that_does_not_both_run_once_and_drop_their_captures() {
        let held = Arc::new(());
        let (small, large) = (held.clone(), held.clone());
        let big = [3u64; 8];
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (r1, r2) = (ran.clone(), ran.clone());
        let small = Envelope::told(move || {
            let _keep = &small;
            r1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        });
        let large = Envelope::told(move || {
            let _keep = &large;
            r2.fetch_add(
                big.iter().sum::<u64>() as usize,
                std::sync::atomic::Ordering::Relaxed,
            );
            Ok(())
        });
        for env in [small, large] {
            let ticket = env.take();
            assert!(ticket.is_some(), "an envelope with work gives a ticket");
            if let Some(ticket) = ticket {
                let (ran_work, outcome) = ticket.run(|_| Error::Unanswered { context: "panic" });
                assert!(outcome.is_ok());
                ran_work.publish();
            }
        }
        assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 1 + 24);
        assert_eq!(Arc::strong_count(&held), 1);
    }

    #[test]
    fn work_dropped_in_its_envelope_drops_its_captures_and_an_empty_one_gives_nothing() {
        let held = Arc::new(());
        let h = held.clone();
        drop(Envelope::told(move || {
            let _keep = &h;
            Ok(())
        }));
        assert_eq!(Arc::strong_count(&held), 1);
        assert!(Envelope::empty().take().is_none());
    }
}
