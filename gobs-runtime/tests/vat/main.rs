//! Vat semantics: near and far calls, promises, ordering, transactional turns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../actors/mod.rs"]
mod actors;
mod rollback;
mod savepoints;

use std::sync::mpsc;
use std::time::Duration;

use actors::{Counter, Holder};
use gobs_runtime::{Error, Promise, Ref, Vat, current_vat, self_ref, spawn, spawn_blocking};

fn counter(vat: &Vat) -> Ref<Counter> {
    vat.spawn_actor(Counter::default()).unwrap()
}

fn count(r: &Ref<Counter>) -> u64 {
    r.send_with(|c| c.count).wait().unwrap()
}

#[test]
fn near_call_returns_and_changes_state() {
    let vat = Vat::spawn("near").unwrap();
    let c = counter(&vat);
    let c2 = c.clone();
    let got = vat
        .run(move || {
            c2.call_mut_with(|c| c.count += 5).unwrap();
            c2.call_with(|c| c.count).unwrap()
        })
        .unwrap();
    assert_eq!(got, 5);
    assert_eq!(count(&c), 5);
    vat.shutdown();
}

#[test]
fn far_send_fulfils_a_promise() {
    let a = Vat::spawn("a").unwrap();
    let c = counter(&a);
    let p = c.send_mut_with(|c| {
        c.count += 1;
        c.count
    });
    assert_eq!(p.wait().unwrap(), 1);
    a.shutdown();
}

#[test]
fn sync_call_to_another_vat_is_refused_with_the_fix() {
    let a = Vat::spawn("alpha").unwrap();
    let b = Vat::spawn("beta").unwrap();
    let in_b = counter(&b);
    let err = a
        .run(move || in_b.call_with(|c| c.count))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::FarCall { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("vat \"beta\""), "{msg}");
    assert!(msg.contains("from vat \"alpha\""), "{msg}");
    assert!(msg.contains(".send()"), "{msg}");
    a.shutdown();
    b.shutdown();
}

#[test]
fn sync_call_outside_a_turn_is_refused() {
    let vat = Vat::spawn("outside").unwrap();
    let c = counter(&vat);
    let err = c.call_with(|c| c.count).unwrap_err();
    assert!(matches!(err, Error::NotInTurn { .. }), "{err}");
    assert!(err.to_string().contains("Vat::run"), "{err}");
    vat.shutdown();
}

#[test]
fn reentrant_mutable_call_is_refused_and_shared_reads_nest() {
    let vat = Vat::spawn("reentrant").unwrap();
    let (a, b) = vat
        .run(|| {
            let a = spawn(Holder {
                target: None,
                other: None,
            });
            let b = spawn(Holder {
                target: None,
                other: Some(a.clone()),
            });
            (a, b)
        })
        .unwrap();
    // A (mutably busy) calls B, which calls A again: refused with Reentrant.
    let (a2, b2) = (a.clone(), b.clone());
    let inner = vat
        .run(move || {
            a2.call_mut_with(|_a| {
                b2.call_with(|b| b.other.as_ref().unwrap().call_mut_with(|_| ()))
                    .unwrap()
            })
            .unwrap()
        })
        .unwrap();
    let err = inner.unwrap_err();
    assert!(matches!(err, Error::Reentrant { .. }), "{err}");
    assert!(err.to_string().contains("Holder#0"), "{err}");
    // Shared reads may nest: A reads B reads A.
    let (a3, b3) = (a.clone(), b.clone());
    let nested = vat
        .run(move || {
            a3.call_with(|_a| b3.call_with(|b| b.other.as_ref().unwrap().call_with(|_| 7)))
        })
        .unwrap();
    assert_eq!(nested.unwrap().unwrap().unwrap(), 7);
    vat.shutdown();
}

#[test]
fn order_between_one_sender_and_one_receiver_is_kept() {
    let a = Vat::spawn("order-a").unwrap();
    let b = Vat::spawn("order-b").unwrap();
    let target = counter(&b);
    // From an actor's turns in another vat, several sends per turn.
    let t = target.clone();
    for turn in 0..100u64 {
        let t = t.clone();
        a.run(move || {
            for i in 0..10 {
                let _ = t.send_mut_with(move |c| c.seen.push(turn * 10 + i));
            }
        })
        .unwrap();
    }
    // From a plain thread.
    for i in 1000..2000u64 {
        let _ = target.send_mut_with(move |c| c.seen.push(i));
    }
    let seen = target.send_with(|c| c.seen.clone()).wait().unwrap();
    assert_eq!(seen, (0..2000).collect::<Vec<_>>());
    // Within one vat.
    let local = counter(&b);
    let l2 = local.clone();
    b.run(move || {
        for i in 0..500 {
            let _ = l2.send_mut_with(move |c| c.seen.push(i));
        }
    })
    .unwrap();
    let seen = local.send_with(|c| c.seen.clone()).wait().unwrap();
    assert_eq!(seen, (0..500).collect::<Vec<_>>());
    a.shutdown();
    b.shutdown();
}

#[test]
fn one_turns_many_sends_to_two_vats_each_arrive_in_order() {
    // More than one hand-over's worth (messages leave a committing turn in chunks), in
    // long runs to one vat and then alternating, with a deferred effect in between.
    let a = Vat::spawn("chunks-a").unwrap();
    let (b, c) = (
        Vat::spawn("chunks-b").unwrap(),
        Vat::spawn("chunks-c").unwrap(),
    );
    let (tb, tc) = (counter(&b), counter(&c));
    let (tb2, tc2) = (tb.clone(), tc.clone());
    let blocking = a
        .run(move || {
            for i in 0..700u64 {
                let _ = tb2.send_mut_with(move |x| x.seen.push(i));
            }
            let blocking = spawn_blocking(|| 7);
            for i in 700..1500u64 {
                let _ = tb2.send_mut_with(move |x| x.seen.push(i));
                if i % 2 == 0 {
                    let _ = tc2.send_mut_with(move |x| x.seen.push(i));
                }
            }
            blocking
        })
        .unwrap();
    assert_eq!(blocking.wait().unwrap(), 7);
    let seen_b = tb.send_with(|x| x.seen.clone()).wait().unwrap();
    assert_eq!(seen_b, (0..1500).collect::<Vec<_>>());
    let seen_c = tc.send_with(|x| x.seen.clone()).wait().unwrap();
    assert_eq!(seen_c, (700..1500).step_by(2).collect::<Vec<_>>());
    a.shutdown();
    b.shutdown();
    c.shutdown();
}

#[test]
fn a_turns_sends_to_a_stopped_vat_each_break_their_promise() {
    let a = Vat::spawn("to-stopped-a").unwrap();
    let b = Vat::spawn("to-stopped-b").unwrap();
    let target = counter(&b);
    b.shutdown();
    let promises = a
        .run(move || {
            (0..600)
                .map(|_| target.send_mut_with(|c| c.count += 1))
                .collect::<Vec<_>>()
        })
        .unwrap();
    for p in promises {
        let err = p.wait().unwrap_err();
        assert!(matches!(err, Error::VatStopped { .. }), "{err}");
    }
    a.shutdown();
}

#[test]
fn callbacks_run_later_in_the_registering_vat_in_their_own_turn() {
    let a = Vat::spawn("registering").unwrap();
    let b = Vat::spawn("answering").unwrap();
    let remote = counter(&b);
    let log = counter(&a);
    let (remote2, log2) = (remote.clone(), log.clone());
    let done = a
        .run(move || {
            let answer = remote2.send_mut_with(|c| {
                c.count += 41;
                c.count
            });
            let log3 = log2.clone();
            let chained = answer.then(move |r| {
                let vat = current_vat().unwrap();
                log3.call_mut_with(|c| c.seen.push(r.unwrap() + 1)).unwrap();
                vat.name().to_string()
            });
            // Still in the registering turn: the callback has not run.
            log2.call_mut_with(|c| c.seen.push(0)).unwrap();
            chained
        })
        .unwrap();
    assert_eq!(done.wait().unwrap(), "registering");
    assert_eq!(
        log.send_with(|c| c.seen.clone()).wait().unwrap(),
        vec![0, 42]
    );
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_failing_callback_is_rolled_back_and_breaks_its_promise() {
    let a = Vat::spawn("cb-fail").unwrap();
    let c = counter(&a);
    let c2 = c.clone();
    let p = a
        .run(move || {
            Promise::fulfilled(1u64).then(move |_| {
                c2.call_mut_with(|c| c.count = 77).unwrap();
                panic!("callback broke");
            })
        })
        .unwrap();
    let err = p.wait().unwrap_err();
    assert!(err.to_string().contains("callback broke"), "{err}");
    assert_eq!(count(&c), 0);
    a.shutdown();
}

#[test]
fn broken_promise_reaches_the_callback() {
    let a = Vat::spawn("cb-broken").unwrap();
    let b = Vat::spawn("cb-broken-b").unwrap();
    let remote = counter(&b);
    let p = a
        .run(move || {
            remote
                .try_send_mut_with(|_| Err::<u64, _>("remote said no"))
                .then(|r| r.unwrap_err().to_string())
        })
        .unwrap();
    assert!(p.wait().unwrap().contains("remote said no"));
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_callback_registered_by_a_failed_turn_never_runs() {
    let a = Vat::spawn("cb-rolled-back").unwrap();
    let c = counter(&a);
    let c2 = c.clone();
    let r = a.run(move || {
        let _ = Promise::fulfilled(1u64).then(move |_| c2.call_mut_with(|c| c.count = 5));
        panic!("after registering");
    });
    assert!(r.is_err());
    // Barrier, then check.
    assert_eq!(count(&c), 0);
    a.shutdown();
}

#[test]
fn promise_resolved_with_a_reference() {
    let a = Vat::spawn("refs-a").unwrap();
    let b = Vat::spawn("refs-b").unwrap();
    let b2 = b.clone();
    // A turn in `a` asks `b` to spawn a counter and answers with its reference.
    let p: Promise<Ref<Counter>> = b2.post(|| {
        Ok(spawn(Counter {
            count: 3,
            seen: vec![],
        }))
    });
    let r = p.wait().unwrap();
    assert_eq!(r.vat(), b);
    assert_eq!(count(&r), 3);
    // And through a resolver, from inside a turn.
    let (p, resolver) = Promise::pair();
    a.run(move || {
        resolver.fulfill(spawn(Counter {
            count: 8,
            seen: vec![],
        }))
    })
    .unwrap();
    assert_eq!(count(&p.wait().unwrap()), 8);
    a.shutdown();
    b.shutdown();
}

#[test]
fn waiting_inside_a_turn_is_refused() {
    let vat = Vat::spawn("no-block").unwrap();
    let other = Vat::spawn("no-block-other").unwrap();
    let o = other.clone();
    let err = vat.run(move || o.run(|| 1)).unwrap().unwrap_err();
    assert!(matches!(err, Error::WouldBlock { .. }), "{err}");
    let err = vat
        .run(|| Promise::fulfilled(1).wait())
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("then"), "{err}");
    vat.shutdown();
    other.shutdown();
}

#[test]
fn self_ref_names_the_running_actor() {
    let vat = Vat::spawn("self").unwrap();
    let c = counter(&vat);
    let me = c.send_with(|_| self_ref::<Counter>()).wait().unwrap();
    assert_eq!(me, Some(c.clone()));
    assert!(
        c.send_with(|_| self_ref::<Holder>())
            .wait()
            .unwrap()
            .is_none()
    );
    vat.shutdown();
}

#[test]
fn slow_work_runs_off_the_vat_and_the_vat_keeps_serving() {
    let vat = Vat::spawn("slow").unwrap();
    let c = counter(&vat);
    let (release, gate) = mpsc::channel::<()>();
    let c2 = c.clone();
    let done = vat
        .run(move || {
            spawn_blocking(move || gate.recv_timeout(Duration::from_secs(10)).is_ok())
                .then(move |r| c2.call_mut_with(|c| c.count = 1000).map(|_| r))
        })
        .unwrap();
    // The slow work is still blocked; the vat answers anyway.
    assert_eq!(count(&c), 0);
    release.send(()).unwrap();
    assert!(done.wait().unwrap().unwrap().unwrap());
    assert_eq!(count(&c), 1000);
    vat.shutdown();
}

#[test]
fn shutdown_drains_then_refuses() {
    let vat = Vat::spawn("drain").unwrap();
    let c = counter(&vat);
    let promises: Vec<_> = (0..100)
        .map(|_| c.send_mut_with(|c| c.count += 1))
        .collect();
    vat.shutdown();
    assert!(vat.is_stopped());
    for p in promises {
        p.wait().unwrap();
    }
    let err = c.send_with(|c| c.count).wait().unwrap_err();
    assert!(matches!(err, Error::VatStopped { .. }), "{err}");
    assert!(err.to_string().contains("drain"), "{err}");
    vat.shutdown(); // idempotent
}

#[test]
fn a_thousand_idle_vats() {
    let vats: Vec<Vat> = (0..1000)
        .map(|i| Vat::spawn(format!("v{i}")).unwrap())
        .collect();
    let refs: Vec<_> = vats.iter().map(counter).collect();
    let answers: Vec<_> = refs
        .iter()
        .map(|r| {
            r.send_mut_with(|c| {
                c.count += 1;
                c.count
            })
        })
        .collect();
    assert!(answers.into_iter().all(|p| p.wait().unwrap() == 1));
    for v in &vats {
        v.shutdown();
    }
}

#[test]
fn promises_can_be_awaited_from_async_code() {
    let vat = Vat::spawn("await").unwrap();
    let c = counter(&vat);
    let n = block_on(async {
        c.send_mut_with(|c| {
            c.count += 2;
            c.count
        })
        .await
    })
    .unwrap();
    assert_eq!(n, 2);
    vat.shutdown();
}

/// Polls `fut` on this thread until it is ready, parking between wake-ups: the least an
/// async runtime does (tokio is no longer a dev-dependency of this crate).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
