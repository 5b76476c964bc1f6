//! The work of a message sent without a promise, out of its envelope, about to run.
//!
//! A queued message keeps its closure in the envelope's one word, or a box of it (see
//! [`Envelope`](super::Envelope)); taken out, it becomes a [`Told`], which stores up to
//! three words in place (a larger closure is boxed and the box stored instead). What is
//! stored is run or dropped exactly once, through a function made for its type.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;

use crate::error::Error;

/// Room for a closure in place, in words.
const WORDS: usize = 3;

type Room = MaybeUninit<[usize; WORDS]>;

/// Work sent without a promise: a closure, in place or boxed.
pub(crate) struct Told {
    room: Room,
    /// Runs (`true`) or drops (`false`) the closure in `room`: made for its type by
    /// [`Told::in_place`], the only place that fills `room`.
    call: unsafe fn(*mut Room, bool) -> Result<(), Box<Error>>,
}

// SAFETY: `room` holds a closure that is `Send` (the bound of `Told::new`), or a box of
// one; `call` is a plain function pointer.
unsafe impl Send for Told {}

impl Told {
    pub(crate) fn new<F>(work: F) -> Told
    where
        F: FnOnce() -> Result<(), Box<Error>> + Send + 'static,
    {
        if fits::<F>() {
            Told::in_place(work)
        } else {
            Told::in_place(Box::new(work))
        }
    }

    /// Stores `work` in `room`. `G` fits (checked by `new`; a box always does).
    fn in_place<G>(work: G) -> Told
    where
        G: FnOnce() -> Result<(), Box<Error>> + Send + 'static,
    {
        assert!(fits::<G>(), "a closure stored in place must fit its room");
        let mut room = Room::uninit();
        // SAFETY: `room` is large and aligned enough for a `G` (asserted above), and
        // nothing is in it yet.
        unsafe { ptr::write(room.as_mut_ptr().cast::<G>(), work) };
        Told {
            room,
            call: call::<G>,
        }
    }

    /// Runs the work (once: this consumes it).
    pub(crate) fn run(self) -> Result<(), Box<Error>> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `room` holds the `G` that `call` was made for (see `in_place`), and it
        // is taken out once: `this` is not dropped, so `Drop` does not take it again.
        unsafe { (this.call)(&mut this.room, true) }
    }
}

impl Drop for Told {
    fn drop(&mut self) {
        // SAFETY: as in `run`: the closure is still in `room` (`run` consumes the `Told`
        // without dropping it), and dropping it takes it out once.
        let _ = unsafe { (self.call)(&mut self.room, false) };
    }
}

/// Whether a `G` fits in a [`Room`].
const fn fits<G>() -> bool {
    size_of::<G>() <= size_of::<Room>() && align_of::<G>() <= align_of::<Room>()
}

/// Takes the `G` out of `room` and runs it (`run`) or drops it.
///
/// # Safety
/// `room` holds a `G`, written by [`Told::in_place`] and not taken out before; after
/// this call it holds nothing.
unsafe fn call<G>(room: *mut Room, run: bool) -> Result<(), Box<Error>>
where
    G: FnOnce() -> Result<(), Box<Error>>,
{
    // SAFETY: the caller's promise: a `G` is there, and is read out once. From here the
    // closure is owned by this frame: a panic while it runs drops it here, once.
    let work = unsafe { ptr::read(room.cast::<G>()) };
    if run { work() } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Arc;

    use super::{Room, Told, fits};

    #[test]
    fn small_work_runs_in_place_and_its_captures_are_dropped_once() {
        let held = Arc::new(());
        let h = held.clone();
        let told = Told::new(move || {
            assert_eq!(Arc::strong_count(&h), 2);
            Ok(())
        });
        assert!(told.run().is_ok());
        assert_eq!(Arc::strong_count(&held), 1);
    }

    #[test]
    fn large_work_is_boxed_and_runs() {
        let big = [7u64; 16];
        assert!(!fits::<[u64; 16]>());
        let held = Arc::new(());
        let h = held.clone();
        let told = Told::new(move || {
            let _keep = &h;
            assert_eq!(big.iter().sum::<u64>(), 112);
            Ok(())
        });
        assert_eq!(size_of::<Told>(), size_of::<Room>() + size_of::<usize>());
        assert!(told.run().is_ok());
        assert_eq!(Arc::strong_count(&held), 1);
    }

    #[test]
    fn work_dropped_unrun_drops_its_captures() {
        let held = Arc::new(());
        let (small, large) = (held.clone(), held.clone());
        let big = [0u8; 64];
        drop(Told::new(move || {
            let _keep = &small;
            Ok(())
        }));
        drop(Told::new(move || {
            let _keep = (&large, big);
            Ok(())
        }));
        assert_eq!(Arc::strong_count(&held), 1);
    }

    #[test]
    fn work_that_panics_drops_its_captures_once() {
        let held = Arc::new(());
        let h = held.clone();
        let told = Told::new(move || {
            let _keep = &h;
            panic!("the work panics");
        });
        assert!(catch_unwind(AssertUnwindSafe(|| told.run())).is_err());
        assert_eq!(Arc::strong_count(&held), 1);
    }
}
