//! Messages sent without a promise (`tell_with`, `tell_mut_with`, Goblins' `<-np`): the
//! same turns, order and rollback as promised sends, with no answer to ask for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actors;

use std::any::Any;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use actors::Counter;
use gobs_runtime::carry::{Carried, CarriedReply};
use gobs_runtime::far::FarObject;
use gobs_runtime::{Error, Promise, Ref, Vat};

fn counter(vat: &Vat) -> Ref<Counter> {
    vat.spawn_actor(Counter::default()).unwrap()
}

fn seen(r: &Ref<Counter>) -> Vec<u64> {
    r.send_with(|c| c.seen.clone()).wait().unwrap()
}

#[test]
fn told_and_promised_messages_from_one_sender_keep_their_order() {
    let a = Vat::spawn("tell-order-a").unwrap();
    let b = Vat::spawn("tell-order-b").unwrap();
    for target in [counter(&a), counter(&b)] {
        let t = target.clone();
        // From a turn (vat a): to its own vat, then to another.
        a.run(move || {
            for i in 0..300u64 {
                if i % 3 == 0 {
                    let _ = t.send_mut_with(move |c| c.seen.push(i));
                } else {
                    t.tell_mut_with(move |c| c.seen.push(i)).unwrap();
                }
            }
        })
        .unwrap();
        // From a plain thread.
        for i in 300..600u64 {
            target.tell_mut_with(move |c| c.seen.push(i)).unwrap();
        }
        assert_eq!(seen(&target), (0..600).collect::<Vec<_>>());
    }
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_failed_turn_tells_nothing() {
    let a = Vat::spawn("tell-failed-a").unwrap();
    let b = Vat::spawn("tell-failed-b").unwrap();
    let (near, far) = (counter(&a), counter(&b));
    let (n, f) = (near.clone(), far.clone());
    let r = a.try_run(move || {
        n.tell_mut_with(|c| c.count += 1).unwrap();
        f.tell_mut_with(|c| c.count += 1).unwrap();
        Err::<(), _>("after telling")
    });
    assert!(r.is_err());
    // A later message to each is a barrier: whatever was queued before it has run.
    assert_eq!(near.send_with(|c| c.count).wait().unwrap(), 0);
    assert_eq!(far.send_with(|c| c.count).wait().unwrap(), 0);
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_told_message_that_panics_is_rolled_back_and_the_vat_goes_on() {
    let vat = Vat::spawn("tell-panics").unwrap();
    let target = counter(&vat);
    target
        .tell_mut_with(|c| {
            c.count = 99;
            panic!("the told message fails");
        })
        .unwrap();
    target.tell_mut_with(|c| c.count += 1).unwrap();
    assert_eq!(target.send_with(|c| c.count).wait().unwrap(), 1);
    vat.shutdown();
}

#[test]
fn a_told_message_keeps_its_target_alive_until_it_runs() {
    let vat = Vat::spawn("tell-holds").unwrap();
    let target = counter(&vat);
    let (tx, rx) = mpsc::channel();
    let t = target.clone();
    vat.run(move || {
        t.tell_mut_with(move |c| {
            c.count += 1;
            tx.send(c.count).unwrap();
        })
        .unwrap();
        // The last reference goes before the message runs.
        drop(t);
    })
    .unwrap();
    drop(target);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    vat.shutdown();
}

#[test]
fn a_message_told_to_a_stopped_vat_is_dropped_with_what_it_holds() {
    let vat = Vat::spawn("tell-stopped").unwrap();
    let target = counter(&vat);
    vat.shutdown();
    let held = Arc::new(());
    let h = held.clone();
    target
        .tell_mut_with(move |c| {
            let _keep = &h;
            c.count += 1;
        })
        .unwrap();
    assert_eq!(Arc::strong_count(&held), 1);
}

/// A far object that takes no message: only its kind matters here.
struct Elsewhere;

impl FarObject for Elsewhere {
    fn send_by_name(&self, _: &str, _: Vec<u8>, _: Vec<Carried>) -> Promise<CarriedReply> {
        Promise::broken(Error::Unanswered {
            context: "a stand-in far object",
        })
    }

    fn describe(&self) -> String {
        "an object on another node".into()
    }

    fn sturdyref(&self) -> Result<String, String> {
        Err("a stand-in has none".into())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn telling_a_closure_to_a_far_reference_is_an_error_at_once() {
    let far = Ref::<Counter>::from_far(Arc::new(Elsewhere));
    let err = far.tell_mut_with(|c| c.count += 1).unwrap_err();
    assert!(matches!(err, Error::NotByName { .. }), "{err:?}");
    let err = far.tell_with(|c| c.count).unwrap_err();
    assert!(matches!(err, Error::NotByName { .. }), "{err:?}");
}
