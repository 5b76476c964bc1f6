//! What a `run` with a terminal (`run -t`, `shell`) asks of the machine: a pseudo-terminal
//! of a type (`TERM`) and a size ([`Tty`]), and the size's later changes ([`Resizes`]), which
//! travel beside the run's streams from whoever shows the run to whoever runs it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WinSize {
    /// Lines.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// Longest `TERM` a run may ask for.
pub const MAX_TERM: usize = 64;

/// The terminal a run asks for on the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tty {
    /// The command's `TERM` (the user's own, so the machine's programs draw for it).
    pub term: String,
    /// Its size at the start.
    pub size: WinSize,
}

impl Tty {
    /// Refuses a `TERM` that no terminal is named: too long, or with characters other than
    /// letters, digits and `.+-_` (it becomes an environment variable on the machine).
    pub fn check(&self) -> Result<(), String> {
        let fine = |c: char| c.is_ascii_alphanumeric() || ".+-_".contains(c);
        if self.term.is_empty() || self.term.len() > MAX_TERM || !self.term.chars().all(fine) {
            return Err(format!(
                "TERM {} is not a terminal's name (at most {MAX_TERM} letters, digits and \
                 `.+-_`); set TERM to your terminal's, e.g. TERM=xterm-256color",
                crate::model::shown(&self.term)
            ));
        }
        Ok(())
    }
}

/// A terminal's size as it changes, shared by whoever learns the changes ([`Resizes::set`])
/// and whoever applies them ([`Resizes::next_after`]). Only the latest size is kept: a
/// burst of changes costs nothing but the last. Clones share it.
#[derive(Clone, Default)]
pub struct Resizes(Arc<(Mutex<Latest>, Condvar)>);

#[derive(Default)]
struct Latest {
    /// How many sizes were set; 0 before the first.
    count: u64,
    size: Option<WinSize>,
    closed: bool,
}

/// What waiting for a size change gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resized {
    /// The size changed: the new one, and the count to wait after next.
    To(u64, WinSize),
    /// No change came within the wait.
    Unchanged,
    /// The run is over: no change will come.
    Closed,
}

impl Resizes {
    fn lock(&self) -> MutexGuard<'_, Latest> {
        self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The terminal is now `size`.
    pub fn set(&self, size: WinSize) {
        let mut latest = self.lock();
        latest.count += 1;
        latest.size = Some(size);
        self.0.1.notify_all();
    }

    /// No change will come any more: waiters are told so.
    pub fn close(&self) {
        self.lock().closed = true;
        self.0.1.notify_all();
    }

    /// The size once it was set more than `seen` times, waiting at most `wait`.
    pub fn next_after(&self, seen: u64, wait: Duration) -> Resized {
        let latest = self.lock();
        let (latest, _) = self
            .0
            .1
            .wait_timeout_while(latest, wait, |l| l.count <= seen && !l.closed)
            .unwrap_or_else(|p| p.into_inner());
        match latest.size {
            Some(size) if latest.count > seen => Resized::To(latest.count, size),
            _ if latest.closed => Resized::Closed,
            _ => Resized::Unchanged,
        }
    }
}

impl std::fmt::Debug for Resizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resizes")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn a_waiter_gets_the_latest_size_once_and_then_the_end() {
        let resizes = Resizes::default();
        assert_eq!(
            resizes.next_after(0, Duration::from_millis(1)),
            Resized::Unchanged
        );
        let small = WinSize { rows: 10, cols: 20 };
        let large = WinSize {
            rows: 50,
            cols: 200,
        };
        resizes.set(small);
        resizes.set(large);
        assert_eq!(resizes.next_after(0, LONG), Resized::To(2, large));
        let waiter = {
            let resizes = resizes.clone();
            std::thread::spawn(move || resizes.next_after(2, LONG))
        };
        resizes.set(small);
        assert_eq!(waiter.join().unwrap(), Resized::To(3, small));
        let waiter = {
            let resizes = resizes.clone();
            std::thread::spawn(move || resizes.next_after(3, LONG))
        };
        resizes.close();
        assert_eq!(waiter.join().unwrap(), Resized::Closed);
    }

    #[test]
    fn only_terminal_names_pass() {
        let tty = |term: &str| Tty {
            term: term.into(),
            size: WinSize { rows: 1, cols: 1 },
        };
        assert!(tty("xterm-256color").check().is_ok());
        assert!(tty("screen.xterm+x_y").check().is_ok());
        for bad in ["", "a b", "x\u{1b}[2J", &"x".repeat(MAX_TERM + 1)] {
            let err = tty(bad).check().unwrap_err();
            assert!(err.contains("not a terminal's name"), "{err}");
        }
    }
}
