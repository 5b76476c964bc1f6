//! Tests of the fast routes of near calls and messages: a slot seen as its actor's type
//! ([`Slot::typed`](super::slot::Slot::typed)), the slot of the last lookup (forgotten
//! whenever the table changes), and snapshots kept in place (see `journal`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use crate::actor::Actor;
use crate::actor_lib::Cell;
use crate::error::Error;
use crate::reference::Ref;
use crate::{Value, Vat, define_actor, spawn};

#[define_actor]
struct Count {
    n: u64,
}

#[define_actor]
impl Count {}

fn count(vat: &Vat, c: &Ref<Count>) -> u64 {
    let c = c.clone();
    vat.run(move || c.call_with(|c| c.n).unwrap()).unwrap()
}

#[test]
fn a_reference_typed_for_another_actor_type_finds_no_actor() {
    let vat = Vat::spawn("fast-typed").unwrap();
    let cell = vat.spawn_actor(Cell::new(Value::Int(3))).unwrap();
    let wrong = Ref::<Count>::new(cell.vat.clone(), cell.id);
    let (right, w) = (cell.clone(), wrong.clone());
    let (read, near) = vat
        .run(move || (right.call_with(Cell::get), w.call_mut_with(|c| c.n += 1)))
        .unwrap();
    assert_eq!(read.unwrap(), Value::Int(3));
    assert!(matches!(near, Err(Error::NoSuchActor { .. })), "{near:?}");
    let sent = wrong.send_with(|c| c.n).wait();
    assert!(matches!(sent, Err(Error::NoSuchActor { .. })), "{sent:?}");
    // The right type, after the wrong one, still reads the actor.
    assert_eq!(cell.send().get().wait().unwrap(), Value::Int(3));
    vat.shutdown();
}

#[test]
fn an_actor_spawned_by_a_failed_turn_is_gone_even_right_after_a_call_to_it() {
    let vat = Vat::spawn("fast-recent").unwrap();
    let kept: Arc<Mutex<Option<Ref<Count>>>> = Arc::default();
    let k = kept.clone();
    let failed = vat.run(move || {
        let c = spawn(Count { n: 0 });
        // This lookup is the last one when the turn fails.
        c.call_mut_with(|c| c.n += 1).unwrap();
        *k.lock().unwrap() = Some(c);
        panic!("the turn fails");
    });
    assert!(matches!(failed, Err(Error::Panicked { .. })), "{failed:?}");
    let c = kept.lock().unwrap().take().unwrap();
    let after = vat.run(move || c.call_with(|c| c.n)).unwrap();
    assert!(matches!(after, Err(Error::NoSuchActor { .. })), "{after:?}");
    vat.shutdown();
}

#[test]
fn an_actor_collected_after_a_call_to_it_is_freed() {
    let vat = Vat::spawn("fast-collect").unwrap();
    let c = vat.spawn_actor(Count { n: 0 }).unwrap();
    c.send_mut_with(|c| c.n += 1).wait().unwrap();
    assert_eq!(vat.stats().unwrap().actors, 1);
    drop(c);
    // The next turns collect it: the slot of the last lookup does not keep it.
    vat.run(|| ()).unwrap();
    assert_eq!(vat.stats().unwrap().actors, 0);
    vat.shutdown();
}

#[test]
fn failed_turns_and_savepoints_put_back_a_snapshot_kept_in_place() {
    assert!(
        super::journal::inline::<<Count as Actor>::Snapshot>(),
        "the test needs a snapshot kept in place"
    );
    let vat = Vat::spawn("fast-inline").unwrap();
    let c = vat.spawn_actor(Count { n: 5 }).unwrap();

    // A turn that changes the actor twice, then fails.
    let c2 = c.clone();
    let failed = vat.run(move || {
        c2.call_mut_with(|c| c.n += 1).unwrap();
        c2.call_mut_with(|c| c.n += 1).unwrap();
        panic!("the turn fails");
    });
    assert!(failed.is_err());
    assert_eq!(count(&vat, &c), 5);

    // A failed call under a savepoint is undone while its turn goes on and commits.
    let c3 = c.clone();
    let n = vat
        .run(move || {
            c3.call_mut_with(|c| c.n += 10).unwrap();
            let undone = c3.try_call_mut_with(|c| {
                c.n += 100;
                Err::<(), _>("undone")
            });
            assert!(undone.is_err());
            c3.call_with(|c| c.n).unwrap()
        })
        .unwrap();
    assert_eq!(n, 15);
    assert_eq!(count(&vat, &c), 15);

    // A kept savepoint (its snapshot joins the turn's), then the turn fails.
    let c4 = c.clone();
    let failed = vat.run(move || {
        c4.try_call_mut_with(|c| {
            c.n += 1;
            Ok::<_, &str>(())
        })
        .unwrap();
        c4.call_mut_with(|c| c.n += 1).unwrap();
        panic!("the turn fails");
    });
    assert!(failed.is_err());
    assert_eq!(count(&vat, &c), 15);

    // A message whose work fails is rolled back too.
    let sent = c
        .try_send_mut_with(|c| {
            c.n += 1;
            Err::<(), _>("no")
        })
        .wait();
    assert!(sent.is_err());
    assert_eq!(count(&vat, &c), 15);
    vat.shutdown();
}
