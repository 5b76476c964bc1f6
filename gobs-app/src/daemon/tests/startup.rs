//! Taking the locks at start-up: a second daemon, a leftover holder, busy commands.

use super::*;

#[test]
fn a_second_daemon_is_refused_with_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    let (stopper, server) = start(&paths);
    let err = lock_state(&paths, || false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(msg.contains("stop it"), "{msg}");
    stopper.stop();
    server.join().unwrap().unwrap();
}

#[test]
fn a_daemon_lock_kept_by_a_child_of_a_dead_daemon_is_waited_for_then_named() {
    use crate::daemon::lock::testing::ForkedChild;
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    paths.create().unwrap();
    // A daemon that forked a child which has not exec-ed yet, then was killed.
    let take = || {
        StateLock::try_acquire(&paths.daemon_lock(), Role::Daemon)
            .unwrap()
            .unwrap()
    };
    let dead = take();
    let child = ForkedChild::start(false);
    dead.abandon();
    let start = Instant::now();
    let err = lock_state(&paths, || false).unwrap_err();
    assert!(start.elapsed() >= LOCK_WAIT, "refused without waiting");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("held by pid {} (`", child.pid)),
        "names the process that holds it: {msg}"
    );
    assert!(
        msg.contains(&format!(
            "inherited it from the daemon (pid {})",
            std::process::id()
        )),
        "{msg}"
    );
    assert!(msg.contains(&format!("`kill {}`", child.pid)), "{msg}");
    // Once the child lets go (it execs or ends), the daemon starts.
    let dead = {
        drop(child);
        take()
    };
    let child = ForkedChild::start(false);
    dead.abandon();
    let ends = thread::spawn(move || drop(child));
    let locks = lock_state(&paths, || false);
    assert!(locks.is_ok(), "{:?}", locks.err().map(|e| e.to_string()));
    ends.join().unwrap();
}

#[test]
fn a_state_lock_whose_holder_has_not_written_its_name_yet_is_not_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    paths.create().unwrap();
    // A command that took the state lock and has not written "PID embedded" yet (or
    // has just cleared it on the way out): the file is empty for a while.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(paths.lock())
        .unwrap();
    file.lock().unwrap();
    let release = thread::spawn(move || {
        thread::sleep(Duration::from_millis(1500));
        drop(file);
    });
    let start = Instant::now();
    let locks = lock_state(&paths, || false);
    assert!(locks.is_ok(), "{:?}", locks.err().map(|e| e.to_string()));
    assert!(start.elapsed() >= Duration::from_millis(1000));
    release.join().unwrap();
}

#[test]
fn a_daemon_starts_while_commands_keep_taking_the_state_lock() {
    let dir = tempfile::tempdir().unwrap();
    let paths = paths(dir.path());
    paths.create().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Commands in embedded mode, taking turns on the state lock without pause (the
    // lock file is empty for a moment between two of them).
    let busy: Vec<_> = (0..3)
        .map(|_| {
            let (path, stop) = (paths.lock(), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Some(lock) = StateLock::try_acquire(&path, Role::Embedded).unwrap() {
                        thread::sleep(Duration::from_millis(5));
                        drop(lock);
                    }
                }
            })
        })
        .collect();
    for _ in 0..20 {
        let stopper = Stopper::new(paths.socket());
        let locks = lock_state(&paths, || stopper.is_stopped()).expect("the daemon starts");
        drop(locks);
    }
    stop.store(true, Ordering::SeqCst);
    for b in busy {
        b.join().unwrap();
    }
}
