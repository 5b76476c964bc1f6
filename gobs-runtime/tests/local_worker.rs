//! Vats on a `LocalWorker`: their turns run on the thread that polls it, messages from
//! any thread reach them, blocking there is refused, and dropping the worker's future
//! stops them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actors;

use std::future::{Future, IntoFuture};
use std::thread::ThreadId;

use actors::Counter;
use gobs_runtime::{Error, LocalWorker, Promise, Ref, Vat, spawn};
use tokio::task::LocalSet;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn thread_of_turn(vat: &Vat) -> Promise<ThreadId> {
    vat.post(|| Ok(std::thread::current().id()))
}

#[test]
fn turns_run_on_the_thread_that_polls_the_worker() {
    let rt = current_thread();
    LocalSet::new().block_on(&rt, async {
        let (worker, run) = LocalWorker::new();
        tokio::task::spawn_local(run);
        let vat = Vat::spawn_on("local-thread", &worker).unwrap();
        assert_eq!(
            thread_of_turn(&vat).await.unwrap(),
            std::thread::current().id()
        );
        let pooled = Vat::spawn("pooled-thread").unwrap();
        assert_ne!(
            pooled
                .post(|| Ok(std::thread::current().id()))
                .await
                .unwrap(),
            std::thread::current().id()
        );
    });
}

#[test]
fn messages_from_other_threads_and_vats_reach_a_local_vat_in_order() {
    let rt = current_thread();
    LocalSet::new().block_on(&rt, async {
        let (worker, run) = LocalWorker::new();
        tokio::task::spawn_local(run);
        let vat = Vat::spawn_on("local-order", &worker).unwrap();
        let counter: Ref<Counter> = vat.post(|| Ok(spawn(Counter::default()))).await.unwrap();
        // From a plain thread, blocking there is fine: the local vat runs here.
        let c = counter.clone();
        let from_thread = std::thread::spawn(move || {
            for _ in 0..100 {
                c.send_mut_with(|c| c.count += 1).wait().unwrap();
            }
        });
        // From a vat on the pool, sends keep their order.
        let pooled = Vat::spawn("pooled-sender").unwrap();
        let c = counter.clone();
        let answers = pooled
            .post(move || {
                Ok((0..100)
                    .map(|_| {
                        c.send_mut_with(|c| {
                            c.count += 1000;
                            c.count
                        })
                    })
                    .collect::<Vec<_>>())
            })
            .await
            .unwrap();
        let mut seen = Vec::new();
        for answer in answers {
            seen.push(answer.await.unwrap());
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        tokio::task::spawn_blocking(move || from_thread.join().unwrap())
            .await
            .unwrap();
        assert_eq!(
            counter.send_with(|c| c.count).await.unwrap(),
            100 * 1000 + 100
        );
    });
}

#[test]
fn blocking_on_the_workers_own_thread_is_refused() {
    let rt = current_thread();
    LocalSet::new().block_on(&rt, async {
        let (worker, run) = LocalWorker::new();
        tokio::task::spawn_local(run);
        let vat = Vat::spawn_on("local-refuse", &worker).unwrap();
        // Let the worker's future be polled once, so it knows its thread.
        let counter: Ref<Counter> = vat.post(|| Ok(spawn(Counter::default()))).await.unwrap();
        let err = vat.run(|| 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::WouldDeadlock {
                    what: "Vat::run",
                    ..
                }
            ),
            "{err}"
        );
        let err = vat.spawn_actor(Counter::default()).unwrap_err();
        assert!(matches!(err, Error::WouldDeadlock { .. }), "{err}");
        let err = counter.send_with(|c| c.count).wait().unwrap_err();
        assert!(matches!(err, Error::WouldDeadlock { .. }), "{err}");
        assert!(err.to_string().contains("LocalWorker"), "{err}");
    });
}

#[test]
fn dropping_the_workers_future_stops_its_vats() {
    let (worker, run) = LocalWorker::new();
    let vat = Vat::spawn_on("local-dropped", &worker).unwrap();
    let rt = current_thread();
    let local = LocalSet::new();
    let counter: Ref<Counter> = local.block_on(&rt, async {
        let driver = tokio::task::spawn_local(run);
        let counter = vat.post(|| Ok(spawn(Counter::default()))).await.unwrap();
        driver.abort();
        let _ = driver.await;
        counter
    });
    let err = counter.send_with(|c| c.count).wait().unwrap_err();
    assert!(
        err.to_string()
            .contains("the LocalWorker it ran on was dropped"),
        "{err}"
    );
    assert!(vat.is_stopped());
}

/// Polls `answer` once, without letting the runtime run anything else.
fn settled_now<F: Future + Unpin>(answer: &mut F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(answer).poll(&mut cx) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    }
}

#[test]
fn run_ready_after_runs_the_turns_it_made_ready_before_returning() {
    let rt = current_thread();
    LocalSet::new().block_on(&rt, async {
        let (worker, run) = LocalWorker::new();
        tokio::task::spawn_local(run);
        let vat = Vat::spawn_on("local-ready", &worker).unwrap();
        let counter: Ref<Counter> = vat.post(|| Ok(spawn(Counter::default()))).await.unwrap();
        // Handed in and answered without this task yielding to the worker's.
        let mut sent = LocalWorker::run_ready_after(|| {
            counter.send_mut_with(|c| {
                c.count += 1;
                c.count
            })
        })
        .into_future();
        assert_eq!(settled_now(&mut sent).map(Result::unwrap), Some(1));
        // Without it, the turn waits for the worker's task.
        let mut later = counter.send_with(|c| c.count).into_future();
        assert!(settled_now(&mut later).is_none());
        assert_eq!(later.await.unwrap(), 1);
    });
}

#[test]
fn run_ready_after_on_a_thread_without_a_local_worker_only_runs_the_closure() {
    let vat = Vat::spawn("pooled-ready").unwrap();
    let counter = vat.spawn_actor(Counter::default()).unwrap();
    let sent = LocalWorker::run_ready_after(|| counter.send_with(|c| c.count));
    assert_eq!(sent.wait().unwrap(), 0);
}
