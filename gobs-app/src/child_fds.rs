//! File descriptors a child process must not keep: the state directory's locks.
//!
//! The locks are `flock`s, which belong to the open file, not to the process: a child
//! forked while one is held holds it too, until it closes its copy. The lock files are
//! opened close-on-exec, so a child lets go when it execs; but between fork and exec a
//! child may take its time (a `pre_exec` that unshares namespaces or mounts, a helper that
//! never execs), and a daemon killed meanwhile leaves its `daemon.lock` held by that child:
//! the next daemon was refused as "already running" by a dead daemon.
//!
//! So each lock this process holds is listed here (`hold`), and every child started with
//! a `pre_exec` closes them first ([`exclude`]). Children started without one run no code
//! of ours between fork and exec (std spawns them with `posix_spawn` where it can), so
//! they let go as soon as they exec.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// How many locks a process can list: a daemon holds two, a test process a few more.
const SLOTS: usize = 64;

/// The listed descriptors; -1 is a free slot. Atomics, so a child reads them between fork
/// and exec without taking a lock.
static HELD: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

/// Lists `fd` as one that children close. False if the list is full (the lock then works
/// as before, and a child may keep it until it execs).
pub(crate) fn hold(fd: RawFd) -> bool {
    HELD.iter().any(|slot| {
        slot.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// Takes `fd` off the list; call it before closing `fd`, so a child never closes a
/// descriptor that a later open reused.
pub(crate) fn let_go(fd: RawFd) {
    for slot in &HELD {
        let _ = slot.compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Closes, in this process, every listed descriptor. For a child between fork and exec:
/// it closes the child's copies, and the parent's locks stay as they are (a lock goes only
/// with the last copy, or an explicit unlock, which this never does). Async-signal-safe:
/// atomic loads and `close`.
pub fn close_in_child() {
    for slot in &HELD {
        let fd = slot.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: closing a descriptor number; in the forked child nothing else of
            // ours uses it.
            unsafe { libc::close(fd) };
        }
    }
}

/// Makes `cmd`'s child close the listed descriptors before anything else it does between
/// fork and exec. Call it before adding the command's own `pre_exec`: they run in order.
pub fn exclude(cmd: &mut Command) {
    // SAFETY: the closure only loads atomics and calls close(2).
    unsafe {
        cmd.pre_exec(|| {
            close_in_child();
            Ok(())
        });
    }
}

/// [`exclude`], then gives `cmd`'s child a session of its own (setsid): it outlives the
/// daemon, and teardown finds its processes by that session.
pub fn in_own_session(cmd: &mut Command) {
    exclude(cmd);
    // SAFETY: the closure makes one system call (setsid) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_descriptor_is_listed_until_let_go() {
        let (a, b) = (1_000_001, 1_000_002);
        assert!(hold(a) && hold(b));
        let listed = |fd| HELD.iter().any(|s| s.load(Ordering::SeqCst) == fd);
        assert!(listed(a) && listed(b));
        let_go(a);
        assert!(!listed(a) && listed(b));
        let_go(b);
        assert!(!listed(b));
    }
}
