//! Transactional turns: a turn that fails (an error or a panic) leaves no trace: its state
//! changes, spawns and sends are undone.

use super::*;

#[test]
fn failed_turn_rolls_back_state() {
    let vat = Vat::spawn("rollback-state").unwrap();
    let c = counter(&vat);
    let p = c.try_send_mut_with(|c| {
        c.count = 100;
        c.seen.push(1);
        Err::<(), _>("refused")
    });
    let err = p.wait().unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(count(&c), 0);
    assert!(c.send_with(|c| c.seen.is_empty()).wait().unwrap());
    vat.shutdown();
}

#[test]
fn failed_turn_rolls_back_every_actor_it_touched() {
    let vat = Vat::spawn("rollback-many").unwrap();
    let (x, y) = (counter(&vat), counter(&vat));
    let (x2, y2) = (x.clone(), y.clone());
    let err = vat
        .try_run(move || {
            x2.call_mut_with(|c| c.count = 1).unwrap();
            y2.call_mut_with(|c| c.count = 2).unwrap();
            x2.call_mut_with(|c| c.count = 3).unwrap();
            Err::<(), _>("no")
        })
        .unwrap_err();
    assert!(matches!(err, Error::Actor { .. }), "{err}");
    assert_eq!((count(&x), count(&y)), (0, 0));
    vat.shutdown();
}

#[test]
fn panicking_turn_rolls_back_state_and_breaks_the_promise_with_the_message() {
    let vat = Vat::spawn("panic").unwrap();
    let c = counter(&vat);
    let p = c.send_mut_with(|c| {
        c.count = 9;
        panic!("disk on fire");
    });
    let err: Error = p.wait().unwrap_err();
    assert!(matches!(err, Error::Panicked { .. }), "{err}");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(count(&c), 0, "the vat keeps serving and the change is gone");
    vat.shutdown();
}

/// Smuggles a reference out of a turn through a channel (outside the turn's control).
fn failed_turn_spawns_are_gone(fail: impl FnOnce() + Send + 'static) {
    let vat = Vat::spawn("rollback-spawn").unwrap();
    let (tx, rx) = mpsc::channel();
    let r = vat.run(move || {
        tx.send(spawn(Counter::default())).unwrap();
        fail();
    });
    assert!(r.is_err());
    let leaked = rx.recv().unwrap();
    let err = vat
        .run(move || leaked.call_with(|c| c.count))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchActor { .. }), "{err}");
    assert!(err.to_string().contains("turn that failed"), "{err}");
    // Ids are not burned by failed turns.
    let next = counter(&vat);
    assert_eq!(next.id().get(), 0);
    vat.shutdown();
}

#[test]
fn failed_turn_rolls_back_spawns_on_panic() {
    failed_turn_spawns_are_gone(|| panic!("boom"));
}

#[test]
fn failed_turn_rolls_back_spawns_on_error() {
    let vat = Vat::spawn("rollback-spawn-err").unwrap();
    let (tx, rx) = mpsc::channel();
    let r = vat.try_run(move || {
        tx.send(spawn(Counter::default())).unwrap();
        Err::<(), _>("nope")
    });
    assert!(r.is_err());
    let leaked = rx.recv().unwrap();
    let err = vat
        .run(move || leaked.call_with(|c| c.count))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchActor { .. }), "{err}");
    vat.shutdown();
}

fn failed_turn_sends_nothing(fails_by_panic: bool) {
    let a = Vat::spawn("sender").unwrap();
    let b = Vat::spawn("receiver").unwrap();
    let (near, far) = (counter(&a), counter(&b));
    let (near2, far2) = (near.clone(), far.clone());
    let r = a.try_run(move || {
        let _ = near2.send_mut_with(|c| c.count += 1);
        let _ = far2.send_mut_with(|c| c.count += 1);
        if fails_by_panic {
            panic!("after sending");
        }
        Err::<(), _>("after sending")
    });
    assert!(r.is_err());
    // A later message in each vat is a barrier: anything queued before it has run.
    assert_eq!(count(&near), 0);
    assert_eq!(count(&far), 0);
    a.shutdown();
    b.shutdown();
}

#[test]
fn failed_turn_rolls_back_sends_on_error() {
    failed_turn_sends_nothing(false);
}

#[test]
fn failed_turn_rolls_back_sends_on_panic() {
    failed_turn_sends_nothing(true);
}

#[test]
fn posting_to_a_vat_from_a_failed_turn_sends_nothing() {
    let a = Vat::spawn("post-from").unwrap();
    let b = Vat::spawn("post-to").unwrap();
    let target = counter(&b);
    let (b2, t2) = (b.clone(), target.clone());
    let r = a.run(move || {
        let t = t2.clone();
        let _ = b2.post(move || t.call_mut_with(|c| c.count += 1));
        panic!("after posting");
    });
    assert!(r.is_err());
    assert_eq!(count(&target), 0);
    a.shutdown();
    b.shutdown();
}
