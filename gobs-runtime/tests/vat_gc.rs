//! Memory follows what is live: actors nothing refers to are freed, the actor table
//! shrinks, and a vat with no handle or reference left stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use gobs_runtime::actor_lib::Cell;
use gobs_runtime::store::MemoryStore;
use gobs_runtime::{Env, PersistentVat, Ref, Value, Vat, define_actor, pool, spawn};

#[define_actor]
pub struct Holder {
    held: Option<Ref<Cell>>,
}

#[define_actor]
impl Holder {
    pub fn drop_held(&mut self) {
        self.held = None;
    }

    pub fn holds(&self) -> bool {
        self.held.is_some()
    }
}

/// `running_vats` is process-wide: the tests that read it take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_hundred_thousand_spawn_and_drop_cycles_leave_the_tables_bounded() {
    let _serial = serial();
    let vat = Vat::spawn("churn").unwrap();
    let keeper = vat.spawn_actor(Cell::new(Value::Int(0))).unwrap();
    let mut most_slots = 0;
    for round in 0..100 {
        vat.run(move || {
            for i in 0..1_000 {
                let r = spawn(Cell::new(Value::Int(i)));
                drop(r);
            }
        })
        .unwrap();
        // Half the rounds also go through messages: the message holds its target.
        if round % 2 == 0 {
            let outside = vat.spawn_actor(Cell::new(Value::Int(round))).unwrap();
            let answer = outside.send().get();
            drop(outside);
            assert_eq!(answer.wait().unwrap(), Value::Int(round));
        }
        let stats = vat.stats().unwrap();
        assert_eq!(stats.actors, 1, "round {round}: {stats:?}");
        most_slots = most_slots.max(stats.slots);
    }
    let stats = vat.stats().unwrap();
    assert_eq!(stats.actors, 1, "{stats:?}");
    assert_eq!(stats.referenced, 1, "{stats:?}");
    assert!(
        most_slots <= 4096,
        "the actor table grew to {most_slots} slots"
    );
    assert_eq!(keeper.send().get().wait().unwrap(), Value::Int(0));
    vat.shutdown();
}

#[test]
fn an_actor_lives_while_another_refers_to_it_and_goes_with_it() {
    let _serial = serial();
    let vat = Vat::spawn("chain").unwrap();
    let holder = vat
        .run(|| {
            let cell = spawn(Cell::new(Value::Int(5)));
            spawn(Holder { held: Some(cell) })
        })
        .unwrap();
    assert_eq!(vat.stats().unwrap().actors, 2);
    assert!(holder.send().holds().wait().unwrap());
    holder.send().drop_held().wait().unwrap();
    assert_eq!(vat.stats().unwrap().actors, 1);
    drop(holder);
    assert_eq!(vat.stats().unwrap().actors, 0);
    vat.shutdown();
}

#[test]
fn a_turn_that_rolls_back_keeps_what_it_dropped() {
    let _serial = serial();
    let vat = Vat::spawn("rollback-keeps").unwrap();
    let holder = vat
        .run(|| {
            spawn(Holder {
                held: Some(spawn(Cell::new(Value::Int(1)))),
            })
        })
        .unwrap();
    let h = holder.clone();
    let failed = vat.try_run(move || {
        h.call().drop_held()?;
        Err::<(), _>(gobs_runtime::Error::Unanswered { context: "undo it" })
    });
    assert!(failed.is_err());
    assert_eq!(vat.stats().unwrap().actors, 2);
    assert!(holder.send().holds().wait().unwrap());
    vat.shutdown();
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        // The bound only catches a hang: a loaded machine is slow, not failing.
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_vat_whose_handles_and_references_are_all_gone_stops() {
    let _serial = serial();
    let before = pool::running_vats();
    let vat = Vat::spawn("forgotten").unwrap();
    let cell = vat.spawn_actor(Cell::new(Value::Int(1))).unwrap();
    let holder = vat
        .run_with(&cell, |cell| {
            Ok::<_, gobs_runtime::Error>(spawn(Holder { held: Some(cell) }))
        })
        .unwrap();
    drop(vat);
    drop(cell);
    // Still reachable through `holder`: it answers.
    assert!(holder.send().holds().wait().unwrap());
    assert!(pool::running_vats() >= 1);
    drop(holder);
    // (Vats of earlier tests may still be stopping: at most as many as before.)
    wait_until("the vat stopped", || pool::running_vats() <= before);
}

#[test]
fn a_callback_waiting_in_a_vat_keeps_it_running() {
    let _serial = serial();
    let other = Vat::spawn("answers-later").unwrap();
    let cell = other.spawn_actor(Cell::new(Value::Int(9))).unwrap();
    let vat = Vat::spawn("waits").unwrap();
    let answer = vat
        .run_with(&cell, |cell| {
            Ok::<_, gobs_runtime::Error>(cell.send().get().then(|v| v.ok()))
        })
        .unwrap();
    drop(vat);
    drop(cell);
    assert_eq!(answer.wait().unwrap(), Some(Value::Int(9)));
    other.shutdown();
}

#[test]
fn a_persistent_vat_keeps_its_roots_and_saved_actors_and_frees_the_rest() {
    let _serial = serial();
    let env = Env::builder("gc")
        .extend(&gobs_runtime::common_env())
        .add::<Holder>()
        .build()
        .unwrap();
    let (vat, root) = PersistentVat::builder("gc-persistent")
        .env(env)
        .store(MemoryStore::new())
        .spawn(|| {
            spawn(Holder {
                held: Some(spawn(Cell::new(Value::Int(3)))),
            })
        })
        .unwrap();
    let weak_root = root.clone();
    drop(root);
    // The root and the cell it holds stay, with no outside reference to either.
    assert_eq!(vat.stats().unwrap().actors, 2);
    vat.run(|| spawn(Cell::new(Value::Int(4)))).unwrap();
    // Not reachable from the root, not saved: freed.
    assert_eq!(vat.stats().unwrap().actors, 2);
    weak_root.send().drop_held().wait().unwrap();
    assert_eq!(vat.stats().unwrap().actors, 1);
    vat.shutdown();
}
