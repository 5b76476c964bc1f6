//! Tasks: straight-line code across promises, each step a turn of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actors;

use std::time::Duration;

use actors::Counter;
use gobs_runtime::{Error, Promise, Ref, Vat, spawn_blocking, task};

fn count(c: &Ref<Counter>) -> u64 {
    c.send().get().wait().unwrap()
}

fn later<T: Send + 'static>(ms: u64, value: T) -> Promise<T> {
    spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(ms));
        value
    })
}

#[test]
fn a_loop_of_sends_and_awaits_across_vats() {
    let here = Vat::spawn("task-here").unwrap();
    let there = Vat::spawn("task-there").unwrap();
    let remote = there.spawn_actor(Counter::default()).unwrap();
    let r = remote.clone();
    let p = here
        .run(move || {
            task(async move {
                let mut answers = Vec::new();
                for _ in 0..100 {
                    answers.push(r.send().increment().await?);
                }
                Ok::<_, Error>(answers)
            })
        })
        .unwrap();
    assert_eq!(p.wait().unwrap(), (1..=100).collect::<Vec<u64>>());
    assert_eq!(count(&remote), 100);
    here.shutdown();
    there.shutdown();
}

#[test]
fn a_failure_after_an_await_rolls_back_only_the_turn_it_is_in() {
    let vat = Vat::spawn("task-rollback").unwrap();
    let c = vat.spawn_actor(Counter::default()).unwrap();
    let c2 = c.clone();
    let p = vat
        .run(move || {
            task(async move {
                c2.call().increment()?; // step 1: kept
                later(5, ()).await?;
                c2.call().increment()?; // step 2: undone with its turn
                c2.call().increment()?;
                Err::<(), gobs_runtime::BoxError>("overdrawn".into())
            })
        })
        .unwrap();
    let err = p.wait().unwrap_err();
    assert!(matches!(err, Error::Actor { .. }), "{err:?}");
    assert!(err.to_string().contains("overdrawn"), "{err}");
    assert_eq!(count(&c), 1);

    // The same with a panic, two awaits in.
    let c3 = c.clone();
    let p = vat
        .run(move || {
            task(async move {
                c3.call().increment()?;
                later(1, ()).await?;
                c3.call().increment()?;
                later(1, ()).await?;
                c3.call().increment()?;
                if c3.call().get()? > 0 {
                    panic!("step three gave up");
                }
                Ok::<_, Error>(())
            })
        })
        .unwrap();
    let err = p.wait().unwrap_err();
    assert!(matches!(err, Error::Panicked { .. }), "{err:?}");
    assert_eq!(count(&c), 3);
    vat.shutdown();
}

#[test]
fn a_broken_promise_awaited_keeps_its_error() {
    let vat = Vat::spawn("task-errors").unwrap();
    let p = vat
        .run(|| {
            task(async {
                Promise::<u8>::broken(Error::Dispatch {
                    actor: "test".into(),
                    detail: "gone".into(),
                })
                .await?;
                Ok::<_, Error>(())
            })
        })
        .unwrap();
    assert!(matches!(p.wait().unwrap_err(), Error::Dispatch { detail: m, .. } if m == "gone"));
    vat.shutdown();
}

#[test]
fn the_vat_serves_other_messages_while_a_task_waits() {
    let vat = Vat::spawn("task-serves").unwrap();
    let (gate, open) = Promise::<()>::pair();
    let p = vat
        .run(move || {
            task(async move {
                gate.await?;
                Ok::<_, Error>("done")
            })
        })
        .unwrap();
    // The task is waiting; the vat still answers.
    assert_eq!(vat.run(|| 7).unwrap(), 7);
    let p = match p.wait_timeout(Duration::from_millis(20)) {
        Err(p) => p,
        Ok(r) => panic!("settled before the gate opened: {r:?}"),
    };
    open.fulfill(());
    assert_eq!(p.wait().unwrap(), "done");
    vat.shutdown();
}

#[test]
fn a_task_started_by_a_failed_turn_never_runs() {
    let vat = Vat::spawn("task-failed-start").unwrap();
    let c = vat.spawn_actor(Counter::default()).unwrap();
    let c2 = c.clone();
    let r = vat.try_run(move || {
        let _ = task(async move {
            c2.call().increment()?;
            Ok::<_, Error>(())
        });
        Err::<(), _>("the starting turn fails")
    });
    assert!(r.is_err());
    // Give a stray first step every chance to run.
    vat.run(|| ()).unwrap();
    vat.run(|| ()).unwrap();
    assert_eq!(count(&c), 0);
    vat.shutdown();
}

#[test]
fn the_first_step_is_a_turn_of_its_own() {
    let vat = Vat::spawn("task-first-step").unwrap();
    let c = vat.spawn_actor(Counter::default()).unwrap();
    let c2 = c.clone();
    // The first step fails: the turn that started the task keeps its own change.
    let p = vat
        .run(move || {
            c2.call().increment().unwrap();
            let c3 = c2.clone();
            task(async move {
                c3.call().increment()?;
                Err::<(), _>(Error::Dispatch {
                    actor: "test".into(),
                    detail: "first step fails".into(),
                })
            })
        })
        .unwrap();
    assert!(matches!(p.wait().unwrap_err(), Error::Dispatch { .. }));
    assert_eq!(count(&c), 1);
    vat.shutdown();
}

#[test]
fn stopping_the_vat_breaks_a_waiting_task() {
    let vat = Vat::spawn("task-stop").unwrap();
    let (gate, _keep_open) = Promise::<()>::pair();
    let p = vat
        .run(move || {
            task(async move {
                gate.await?;
                Ok::<_, Error>(())
            })
        })
        .unwrap();
    vat.run(|| ()).unwrap();
    vat.shutdown();
    let err = p.wait().unwrap_err();
    assert!(
        matches!(err, Error::VatStopped { ref vat } if vat == "task-stop"),
        "{err:?}"
    );
}

#[test]
fn a_task_outside_a_turn_says_so() {
    let err = task(async { Ok::<_, Error>(()) }).wait().unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotInTurn {
                what: "starting a task",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn many_tasks_interleave_in_one_vat_each_in_order() {
    let here = Vat::spawn("tasks-many").unwrap();
    let there = Vat::spawn("tasks-many-remote").unwrap();
    let remote = there.spawn_actor(Counter::default()).unwrap();
    let tasks: Vec<Promise<Vec<u64>>> = (0..20)
        .map(|_| {
            here.run_with(&remote, |r| {
                Ok::<_, Error>(task(async move {
                    let mut seen = Vec::new();
                    for _ in 0..50 {
                        seen.push(r.send().increment().await?);
                    }
                    Ok::<_, Error>(seen)
                }))
            })
            .unwrap()
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        let seen = t.wait().unwrap();
        assert_eq!(seen.len(), 50);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        all.extend(seen);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=1000).collect::<Vec<u64>>());
    here.shutdown();
    there.shutdown();
}
