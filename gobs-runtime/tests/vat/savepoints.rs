//! Savepoints: a fallible near call inside a turn undoes only what it did when it fails,
//! and the turn goes on.

use super::*;
use gobs_runtime::define_actor;

/// Changes itself, spawns and sends, then fails if told to.
#[define_actor]
pub struct Worker {
    done: u64,
    log: Option<Ref<Counter>>,
}

#[define_actor]
impl Worker {
    pub fn work(&mut self, fail: bool) -> Result<u64, String> {
        self.done += 1;
        let _extra = spawn(Counter::default());
        if let Some(log) = &self.log {
            log.call_mut_with(|c| c.count += 10).unwrap();
            let _ = log.send_mut_with(|c| c.seen.push(99));
        }
        if fail {
            Err("no".into())
        } else {
            Ok(self.done)
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }
}

/// A vat with a worker that logs into a counter of the same vat.
fn worker_with_log(name: &str) -> (Vat, Ref<Worker>, Ref<Counter>) {
    let vat = Vat::spawn(name).unwrap();
    let log = counter(&vat);
    let l = log.clone();
    let worker = vat
        .run(move || {
            spawn(Worker {
                done: 0,
                log: Some(l),
            })
        })
        .unwrap();
    (vat, worker, log)
}

#[test]
fn a_failed_near_call_leaves_no_trace_and_the_turn_goes_on() {
    let (vat, worker, log) = worker_with_log("savepoints");
    let w = worker.clone();
    let l2 = log.clone();
    let (ok, failed, after) = vat
        .run(move || {
            // Touched before the failed call, in the same turn: must keep this change.
            l2.call_mut_with(|c| c.count += 1).unwrap();
            let ok = w.call().work(false).unwrap();
            let failed = w.call().work(true).unwrap_err().to_string();
            let after = (w.call().done().unwrap(), l2.call_with(|c| c.count).unwrap());
            (ok, failed, after)
        })
        .unwrap();
    assert_eq!(ok, 1);
    assert!(failed.contains("no"), "{failed}");
    // The successful call's effects stay; the failed call's are gone (its +1 on the
    // worker, its +10 on the log), and the change made before both stays.
    assert_eq!(after, (1, 1 + 10));
    assert_eq!(worker.send().done().wait().unwrap(), 1);
    assert_eq!(count(&log), 11);
    // The failed call's send never went; the successful one's did.
    assert_eq!(log.send_with(|c| c.seen.clone()).wait().unwrap(), vec![99]);
    vat.shutdown();
}

#[test]
fn a_failed_turn_still_undoes_the_calls_that_succeeded_in_it() {
    let (vat, worker, log) = worker_with_log("savepoints-turn");
    let w = worker.clone();
    let r = vat.try_run(move || {
        w.call().work(false).unwrap();
        w.call().work(true)
    });
    assert!(r.is_err());
    assert_eq!(worker.send().done().wait().unwrap(), 0);
    assert_eq!(count(&log), 0);
    vat.shutdown();
}

#[test]
fn nested_savepoints_undo_only_the_inner_failure() {
    let vat = Vat::spawn("savepoints-nested").unwrap();
    let c = counter(&vat);
    let c2 = c.clone();
    let total = vat
        .run(move || {
            let outer = c2.try_call_mut_with(|o| {
                o.count += 1;
                // Inner call on the same actor from outside its borrow is re-entrant;
                // use another counter for the inner level.
                let other = spawn(Counter::default());
                let inner: Result<(), _> = other.try_call_mut_with(|i| {
                    i.count = 50;
                    Err::<(), _>("inner fails")
                });
                assert!(inner.is_err());
                assert_eq!(other.call_with(|i| i.count).unwrap(), 0);
                Ok::<_, String>(o.count)
            });
            (outer.unwrap(), c2.call_with(|c| c.count).unwrap())
        })
        .unwrap();
    assert_eq!(total, (1, 1));
    vat.shutdown();
}
