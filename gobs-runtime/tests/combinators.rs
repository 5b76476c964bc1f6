//! Promise combinators: each one's success, a broken input, and (for those that run a
//! callback) a failing callback rolling back its own turn only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actors;

use std::time::Duration;

use actors::Counter;
use gobs_runtime::{Error, Promise, Ref, Vat, join, spawn_blocking};

fn later<T: Send + 'static>(ms: u64, value: T) -> Promise<T> {
    spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(ms));
        value
    })
}

fn broken<T: Send + 'static>(what: &str) -> Promise<T> {
    Promise::broken(Error::Dispatch {
        actor: "test".into(),
        detail: what.into(),
    })
}

fn count(c: &Ref<Counter>) -> u64 {
    c.send().get().wait().unwrap()
}

#[test]
fn map_transforms_and_passes_a_break_on_unchanged() {
    let vat = Vat::spawn("map").unwrap();
    let p = vat.run(|| later(5, 20).map(|v| v + 1)).unwrap();
    assert_eq!(p.wait().unwrap(), 21);
    let p = vat
        .run(|| broken::<u8>("input broke").map(|_| -> u8 { unreachable!("not called") }))
        .unwrap();
    let err = p.wait().unwrap_err();
    assert!(
        matches!(&err, Error::Dispatch { detail: m, .. } if m == "input broke"),
        "{err:?}"
    );
    vat.shutdown();
}

#[test]
fn a_panicking_map_callback_rolls_back_its_own_turn_only() {
    let vat = Vat::spawn("map-rollback").unwrap();
    let c = vat.spawn_actor(Counter::default()).unwrap();
    let c2 = c.clone();
    let p = vat
        .run(move || {
            // The registering turn's own change is kept...
            c2.call().increment().unwrap();
            let c3 = c2.clone();
            later(5, ()).map(move |()| {
                // ...the callback's is undone with its turn.
                c3.call().increment().unwrap();
                panic!("callback gave up");
            })
        })
        .unwrap();
    let err: Error = p.wait().unwrap_err();
    assert!(matches!(err, Error::Panicked { .. }), "{err:?}");
    assert!(err.to_string().contains("callback gave up"), "{err}");
    assert_eq!(count(&c), 1);
    vat.shutdown();
}

#[test]
fn try_map_err_rolls_back_and_breaks_with_the_error() {
    let vat = Vat::spawn("try-map").unwrap();
    let c = vat.spawn_actor(Counter::default()).unwrap();
    let c2 = c.clone();
    let (ok, bad) = vat
        .run(move || {
            let c3 = c2.clone();
            let ok = later(1, 2u64).try_map(|v| Ok::<_, String>(v * 3));
            let bad = later(1, 2u64).try_map(move |_| {
                c3.call().increment().unwrap();
                Err::<u64, _>("not enough funds")
            });
            (ok, bad)
        })
        .unwrap();
    assert_eq!(ok.wait().unwrap(), 6);
    let err = bad.wait().unwrap_err();
    assert!(matches!(err, Error::Actor { .. }), "{err:?}");
    assert!(err.to_string().contains("not enough funds"), "{err}");
    assert_eq!(count(&c), 0);
    vat.shutdown();
}

#[test]
fn and_then_flattens_the_second_step() {
    let vat = Vat::spawn("and-then").unwrap();
    let other = Vat::spawn("and-then-other").unwrap();
    let c = other.spawn_actor(Counter::default()).unwrap();
    let c2 = c.clone();
    let p = vat
        .run(move || {
            c2.send()
                .increment()
                .and_then(move |first| c2.send().increment().map(move |second| (first, second)))
        })
        .unwrap();
    assert_eq!(p.wait().unwrap(), (1, 2));
    // A broken second step breaks the result.
    let p = vat
        .run(|| later(1, ()).and_then(|()| broken::<u8>("second step broke")))
        .unwrap();
    assert!(
        matches!(p.wait().unwrap_err(), Error::Dispatch { detail: m, .. } if m == "second step broke")
    );
    // A failing step rolls back its turn.
    let c3 = c.clone();
    let vat_c = vat.spawn_actor(Counter::default()).unwrap();
    let vat_c2 = vat_c.clone();
    let p = vat
        .run(move || {
            later(1, ()).and_then(move |()| -> Promise<u64> {
                vat_c2.call().increment().unwrap();
                panic!("step failed after a change")
            })
        })
        .unwrap();
    assert!(matches!(p.wait().unwrap_err(), Error::Panicked { .. }));
    assert_eq!(count(&vat_c), 0);
    assert_eq!(count(&c3), 2);
    vat.shutdown();
    other.shutdown();
}

#[test]
fn flatten_joins_a_promise_of_a_promise_anywhere() {
    // No turn needed: flatten runs no user code.
    let p = Promise::fulfilled(later(5, 42)).flatten();
    assert_eq!(p.wait().unwrap(), 42);
    let p = broken::<Promise<u8>>("outer").flatten();
    assert!(matches!(p.wait().unwrap_err(), Error::Dispatch { detail: m, .. } if m == "outer"));
    let p = Promise::fulfilled(broken::<u8>("inner")).flatten();
    assert!(matches!(p.wait().unwrap_err(), Error::Dispatch { detail: m, .. } if m == "inner"));
}

#[test]
fn all_keeps_order_and_breaks_on_the_first_error() {
    let p = Promise::all(vec![later(20, 1), Promise::fulfilled(2), later(5, 3)]);
    assert_eq!(p.wait().unwrap(), vec![1, 2, 3]);
    assert!(Promise::<u8>::all(Vec::new()).wait().unwrap().is_empty());
    // The break arrives while the other promise is still pending: it settles only once
    // the break has been seen. (The bound only catches an `all` that waits for it.)
    let (slow, settle) = Promise::<u8>::pair();
    let p = Promise::all(vec![slow, broken("second broke")]);
    match p.wait_timeout(Duration::from_secs(60)) {
        Ok(answer) => assert!(
            matches!(&answer, Err(Error::Dispatch { detail: m, .. }) if m == "second broke"),
            "{answer:?}"
        ),
        Err(_) => panic!("all waited for the pending promise instead of breaking"),
    }
    settle.fulfill(1);
}

#[test]
fn all_inside_a_turn_settles_in_the_vat() {
    let vat = Vat::spawn("all-in-turn").unwrap();
    let c = vat.spawn_actor(Counter::default()).unwrap();
    let p = vat
        .run(move || {
            let sends: Vec<Promise<u64>> = (0..10).map(|_| c.send().increment()).collect();
            Promise::all(sends).map(|v| v.into_iter().sum::<u64>())
        })
        .unwrap();
    assert_eq!(p.wait().unwrap(), (1..=10).sum());
    vat.shutdown();
}

#[test]
fn all_settled_gives_every_answer() {
    let p = Promise::all_settled(vec![later(5, 1), broken("two"), Promise::fulfilled(3)]);
    let answers = p.wait().unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0].as_ref().unwrap(), &1);
    assert!(matches!(&answers[1], Err(Error::Dispatch { detail: m, .. }) if m == "two"));
    assert_eq!(answers[2].as_ref().unwrap(), &3);
}

#[test]
fn join_waits_for_values_of_different_types() {
    let (a, b) = join((later(10, "ten"), Promise::fulfilled(2u8)))
        .wait()
        .unwrap();
    assert_eq!((a, b), ("ten", 2));
    let (a, b, c, d) = join((
        Promise::fulfilled(1u8),
        later(5, 'b'),
        Promise::fulfilled(String::from("c")),
        later(1, 4.0f64),
    ))
    .wait()
    .unwrap();
    assert_eq!((a, b, c.as_str(), d), (1, 'b', "c", 4.0));
    let p = join((later(2_000, 1u8), broken::<char>("right broke")));
    assert!(
        matches!(p.wait().unwrap_err(), Error::Dispatch { detail: m, .. } if m == "right broke")
    );
    let p = join((
        broken::<u8>("a"),
        Promise::fulfilled(1u8),
        Promise::fulfilled(2u8),
    ));
    assert!(matches!(p.wait().unwrap_err(), Error::Dispatch { detail: m, .. } if m == "a"));
}

#[test]
fn race_takes_the_first_to_settle_broken_or_not() {
    let p = Promise::race(vec![later(500, 1), later(5, 2)]);
    assert_eq!(p.wait().unwrap(), 2);
    let p = Promise::race(vec![later(500, 1), broken("fast break")]);
    assert!(
        matches!(p.wait().unwrap_err(), Error::Dispatch { detail: m, .. } if m == "fast break")
    );
    let err = Promise::<u8>::race(Vec::new()).wait().unwrap_err();
    assert!(matches!(&err, Error::NoneFulfilled { errors } if errors.is_empty()));
    assert!(err.to_string().contains("no promise was given"), "{err}");
}

#[test]
fn any_takes_the_first_fulfilled_and_lists_every_break() {
    let p = Promise::any(vec![broken("fast break"), later(10, 7)]);
    assert_eq!(p.wait().unwrap(), 7);
    let err = Promise::<u8>::any(vec![broken("one"), broken("two")])
        .wait()
        .unwrap_err();
    let Error::NoneFulfilled { errors } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(errors.len(), 2);
    assert!(matches!(&errors[1], Error::Dispatch { detail: m, .. } if m == "two"));
    assert!(err.to_string().contains("all 2 promises broke"), "{err}");
}

#[test]
fn callback_combinators_outside_a_turn_say_so() {
    let err = Promise::fulfilled(1).map(|v| v + 1).wait().unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotInTurn {
                what: "Promise::map",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn resolver_settle_passes_an_answer_on() {
    let (p, r) = Promise::<u8>::pair();
    r.settle(Ok(3));
    assert_eq!(p.wait().unwrap(), 3);
    let (p, r) = Promise::<u8>::pair();
    r.settle(Err(Error::Dispatch {
        actor: "test".into(),
        detail: "passed on".into(),
    }));
    assert!(matches!(p.wait().unwrap_err(), Error::Dispatch { detail: m, .. } if m == "passed on"));
}
