//! Sleepy actors (`Sleep`): a sleepy persistent vat drops saved, idle actors from memory
//! and wakes them on their next message, transparently: typed sends, near calls from
//! another actor of the vat, calls by name, pipelined and queued messages all answer as
//! with `Sleep::Never`, turns stay transactional, and a wake that fails breaks only its
//! message, naming the vat and the actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU8, Ordering};

use gobs_runtime::store::MemoryStore;
use gobs_runtime::{
    Env, Error, PersistentVat, Promise, Ref, Registry, Sleep, Vat, define_actor, spawn,
};

#[define_actor]
pub struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {
    pub fn incr(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
    pub fn get(&self) -> u64 {
        self.n
    }
}

/// Decoding a guard of this value (0: none) fails: a portrait that does not rebuild. Only
/// the test that sets it makes guards of that value, so tests running beside it are not
/// touched.
static BROKEN: AtomicU8 = AtomicU8::new(0);
const BREAKABLE: u8 = 99;

#[derive(serde::Serialize, Clone, Default)]
pub struct Guard(u8);

impl<'de> serde::Deserialize<'de> for Guard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u8::deserialize(d)?;
        if v != 0 && BROKEN.load(Ordering::SeqCst) == v {
            return Err(serde::de::Error::custom("the guard is broken"));
        }
        Ok(Guard(v))
    }
}

#[define_actor]
pub struct Fragile {
    n: u64,
    guard: Guard,
}

#[define_actor]
impl Fragile {
    pub fn incr(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

#[define_actor]
pub struct Index {
    counters: Vec<Ref<Counter>>,
    fragile: Ref<Fragile>,
}

#[define_actor]
impl Index {
    pub fn get(&self, i: u64) -> Ref<Counter> {
        self.counters[i as usize].clone()
    }
    /// A near call into a (maybe sleeping) actor of the same vat.
    pub fn bump(&self, i: u64) -> Result<u64, Error> {
        self.counters[i as usize].call().incr()
    }
    /// Changes a counter, then fails: the turn leaves no trace.
    pub fn bump_then_fail(&self, i: u64) -> Result<(), String> {
        self.counters[i as usize]
            .call()
            .incr()
            .map_err(|e| e.to_string())?;
        Err("refused after the change".to_string())
    }
    pub fn sum(&self) -> Result<u64, Error> {
        self.counters.iter().map(|c| c.call().get()).sum()
    }
    /// Drops the index's reference to counter `i`: no root reaches it any more.
    pub fn drop_counter(&mut self, i: u64) {
        self.counters.remove(i as usize);
    }
    pub fn fragile(&self) -> Ref<Fragile> {
        self.fragile.clone()
    }
}

/// An actor in another vat that reaches a counter by a saved reference.
#[define_actor]
pub struct Poker {
    target: Ref<Counter>,
}

#[define_actor]
impl Poker {
    pub fn poke(&self) -> Promise<u64> {
        self.target.send().incr()
    }
}

/// One link of a chain (two of them make a cycle).
#[define_actor]
pub struct Link {
    next: Option<Ref<Link>>,
}

#[define_actor]
impl Link {
    pub fn set_next(&mut self, next: Option<Ref<Link>>) {
        self.next = next;
    }
}

const COUNTERS: u64 = 40;

fn env() -> Env {
    Env::builder("sleep")
        .add::<Counter>()
        .add::<Fragile>()
        .add::<Index>()
        .add::<Poker>()
        .add::<Link>()
        .build()
        .unwrap()
}

/// A registry whose vat "index" holds `COUNTERS` counters, restarted with `sleep`.
fn restarted(sleep: Sleep) -> (Registry, Vat, Ref<Index>) {
    restarted_with(sleep, 7)
}

/// [`restarted`], its fragile actor's guard of value `guard`.
fn restarted_with(sleep: Sleep, guard: u8) -> (Registry, Vat, Ref<Index>) {
    let registry = Registry::in_memory(env());
    registry
        .start_vat("index", move || {
            let counters = (0..COUNTERS).map(|n| spawn(Counter { n })).collect();
            let fragile = spawn(Fragile {
                n: 0,
                guard: Guard(guard),
            });
            spawn(Index { counters, fragile })
        })
        .unwrap();
    let registry = registry.restart().unwrap();
    registry.set_sleep("index", sleep).unwrap();
    let (vat, index) = registry.restore_vat::<Ref<Index>>("index").unwrap();
    (registry, vat, index)
}

/// Every way of reaching an actor, in one script; its answers, in order.
fn script(index: &Ref<Index>) -> Vec<u64> {
    let mut out = Vec::new();
    let c3 = index.send().get(3).wait().unwrap();
    // Queued: sent while it sleeps, answered in order.
    let queued: Vec<_> = (0..5).map(|_| c3.send().incr()).collect();
    out.extend(queued.into_iter().map(|p| p.wait().unwrap()));
    // A near call from another actor of the vat.
    out.push(index.send().bump(5).wait().unwrap());
    out.push(index.send().bump(5).wait().unwrap());
    // Pipelined: a message to the promised reference.
    out.push(index.send().get(7).pipeline().send().incr().wait().unwrap());
    // By name.
    let bytes = c3.invoke("incr", rmp_serde::to_vec(&()).unwrap());
    out.push(rmp_serde::from_slice(&bytes.wait().unwrap()).unwrap());
    // A failed turn leaves the counter as it was.
    assert!(index.send().bump_then_fail(9).wait().is_err());
    out.push(
        index
            .send()
            .get(9)
            .wait()
            .unwrap()
            .send()
            .get()
            .wait()
            .unwrap(),
    );
    // Every counter, by near calls.
    out.push(index.send().sum().wait().unwrap());
    out
}

fn stats(vat: &Vat) -> gobs_runtime::VatStats {
    vat.stats().unwrap()
}

#[test]
fn a_restored_sleepy_vat_starts_asleep() {
    let (registry, vat, _index) = restarted(Sleep::Always);
    let s = stats(&vat);
    // The index (a root, handed out) and every counter and the fragile actor.
    assert_eq!(s.asleep, COUNTERS as usize + 2, "{s:?}");
    assert_eq!(s.actors, 0, "{s:?}");
    registry.shutdown();
}

#[test]
fn every_way_of_reaching_an_actor_answers_as_with_sleep_off() {
    let (off, _, index) = restarted(Sleep::Never);
    let expected = script(&index);
    off.shutdown();
    for sleep in [Sleep::Always, Sleep::Lru { awake: 3 }] {
        let (registry, vat, index) = restarted(sleep);
        assert_eq!(script(&index), expected, "{sleep:?}");
        let s = stats(&vat);
        let awake_at_most = match sleep {
            Sleep::Lru { awake } => awake,
            _ => 0,
        };
        assert!(s.actors <= awake_at_most, "{sleep:?}: {s:?}");
        assert_eq!(
            s.actors + s.asleep,
            COUNTERS as usize + 2,
            "{sleep:?}: {s:?}"
        );
        // What woke, changed and slept again was saved: a restart sees it.
        let registry = registry.restart().unwrap();
        let (_, index) = registry.restore_vat::<Ref<Index>>("index").unwrap();
        let c3 = index.send().get(3).wait().unwrap();
        assert_eq!(c3.send().get().wait().unwrap(), 3 + 6, "{sleep:?}");
        assert_eq!(
            index.send().bump(5).wait().unwrap(),
            5 + 3,
            "{sleep:?}: two near increments were saved"
        );
        registry.shutdown();
    }
}

#[test]
fn lru_keeps_the_most_recently_used_awake() {
    let (registry, vat, index) = restarted(Sleep::Lru { awake: 4 });
    for i in 0..COUNTERS {
        index.send().bump(i).wait().unwrap();
    }
    // The index and the last three counters bumped are the four most recent.
    let s = stats(&vat);
    assert_eq!(s.actors, 4, "{s:?}");
    assert_eq!(
        index.send().sum().wait().unwrap(),
        (0..COUNTERS).map(|n| n + 1).sum()
    );
    registry.shutdown();
}

#[test]
fn a_wake_that_fails_breaks_its_message_and_loses_nothing() {
    let (registry, vat, index) = restarted_with(Sleep::Always, BREAKABLE);
    let fragile = index.send().fragile().wait().unwrap();
    assert_eq!(fragile.send().incr().wait().unwrap(), 1);
    BROKEN.store(BREAKABLE, Ordering::SeqCst);
    let err = fragile.send().incr().wait().unwrap_err().to_string();
    // A snapshot cannot leave the actor out of the store: it fails instead.
    let snapshot = vat.save_snapshot().wait();
    BROKEN.store(0, Ordering::SeqCst);
    let snapshot = snapshot.unwrap_err().to_string();
    assert!(snapshot.contains("waking actor #"), "{snapshot}");
    assert!(err.contains("vat \"index\""), "{err}");
    assert!(err.contains("waking actor #"), "{err}");
    assert!(err.contains("Fragile"), "{err}");
    assert!(err.contains("the guard is broken"), "{err}");
    // The vat serves on, and the actor wakes with its saved state once it can.
    assert_eq!(fragile.send().incr().wait().unwrap(), 2);
    assert!(!vat.is_stopped());
    let registry = registry.restart().unwrap();
    let (_, index) = registry.restore_vat::<Ref<Index>>("index").unwrap();
    let fragile = index.send().fragile().wait().unwrap();
    assert_eq!(fragile.send().incr().wait().unwrap(), 3, "nothing was lost");
    registry.shutdown();
}

#[test]
fn the_strategy_is_chosen_before_the_vat_starts() {
    let (registry, _vat, _index) = restarted(Sleep::Never);
    let err = registry.set_sleep("index", Sleep::Always).unwrap_err();
    assert!(err.to_string().contains("running already"), "{err}");
    registry.shutdown();
}

#[test]
fn a_snapshot_of_a_sleepy_vat_keeps_it_asleep_and_complete() {
    let (registry, vat, index) = restarted(Sleep::Always);
    index.send().bump(1).wait().unwrap();
    vat.save_snapshot().wait().unwrap();
    let s = stats(&vat);
    assert_eq!(s.actors, 0, "{s:?}");
    let registry = registry.restart().unwrap();
    let (_, index) = registry.restore_vat::<Ref<Index>>("index").unwrap();
    assert_eq!(
        index.send().sum().wait().unwrap(),
        (0..COUNTERS).sum::<u64>() + 1
    );
    registry.shutdown();
}

#[test]
fn a_fresh_sleepy_vat_puts_its_actors_to_sleep_once_saved() {
    let registry = Registry::in_memory(env());
    registry.set_sleep("index", Sleep::Always).unwrap();
    let (vat, index) = registry
        .start_vat("index", || {
            let counters = (0..COUNTERS).map(|n| spawn(Counter { n })).collect();
            let fragile = spawn(Fragile {
                n: 0,
                guard: Guard(7),
            });
            spawn(Index { counters, fragile })
        })
        .unwrap();
    let s = stats(&vat);
    assert_eq!((s.actors, s.asleep), (0, COUNTERS as usize + 2), "{s:?}");
    assert_eq!(index.send().bump(2).wait().unwrap(), 3);
    registry.shutdown();
}

#[test]
fn a_sleeping_actor_no_root_reaches_lives_on_while_referenced() {
    let (registry, vat, index) = restarted(Sleep::Always);
    let c0 = index.send().get(0).wait().unwrap();
    assert_eq!(c0.send().incr().wait().unwrap(), 1);
    // Asleep, then removed from the store: the reference held here still reaches it.
    index.send().drop_counter(0).wait().unwrap();
    assert_eq!(c0.send().incr().wait().unwrap(), 2);
    assert_eq!(c0.send().get().wait().unwrap(), 2);
    drop(c0);
    // Once nothing names it, it is gone from memory too.
    let s = stats(&vat);
    assert_eq!(s.actors + s.asleep, COUNTERS as usize + 1, "{s:?}");
    registry.shutdown();
}

/// As above, for a reference made by the spawn itself (not decoded from a portrait): its
/// hold, which the actor's slot kept, must stay seen once the actor sleeps.
#[test]
fn a_sleeping_actor_held_by_its_spawned_reference_lives_on() {
    let registry = Registry::in_memory(env());
    registry.set_sleep("index", Sleep::Always).unwrap();
    let (spawned, first) = std::sync::mpsc::channel();
    let (vat, index) = registry
        .start_vat("index", move || {
            let counters: Vec<_> = (0..COUNTERS).map(|n| spawn(Counter { n })).collect();
            spawned.send(counters[0].clone()).unwrap();
            let fragile = spawn(Fragile {
                n: 0,
                guard: Guard(7),
            });
            spawn(Index { counters, fragile })
        })
        .unwrap();
    let c0 = first.recv().unwrap();
    assert_eq!(c0.send().incr().wait().unwrap(), 1);
    assert_eq!(stats(&vat).actors, 0, "all asleep");
    index.send().drop_counter(0).wait().unwrap();
    assert_eq!(c0.send().incr().wait().unwrap(), 2);
    drop(c0);
    let s = stats(&vat);
    assert_eq!(s.actors + s.asleep, COUNTERS as usize + 1, "{s:?}");
    registry.shutdown();
}

#[test]
fn a_lone_persistent_vat_can_sleep_too() {
    let store = MemoryStore::new();
    let start = || {
        PersistentVat::builder("lone")
            .env(env())
            .store(store.clone())
            .sleep(Sleep::Always)
            .spawn(|| spawn(Counter { n: 5 }))
            .unwrap()
    };
    let (vat, counter) = start();
    assert_eq!(counter.send().incr().wait().unwrap(), 6);
    assert_eq!(stats(&vat).asleep, 1);
    vat.shutdown();
    let (vat, counter) = start();
    assert_eq!(stats(&vat).asleep, 1, "restored asleep");
    assert_eq!(counter.send().get().wait().unwrap(), 6);
    vat.shutdown();
}

#[test]
fn a_saved_reference_from_another_vat_wakes_its_target() {
    let (registry, vat, index) = restarted(Sleep::Always);
    let c4 = index.send().get(4).wait().unwrap();
    let (_, poker) = registry
        .start_vat("poker", move || spawn(Poker { target: c4 }))
        .unwrap();
    assert_eq!(poker.send().poke().wait().unwrap(), 5);
    let registry = registry.restart().unwrap();
    registry.set_sleep("index", Sleep::Always).unwrap();
    // The poker's restore brings vat "index" back, asleep.
    let (_, poker) = registry.restore_vat::<Ref<Poker>>("poker").unwrap();
    assert_eq!(poker.send().poke().wait().unwrap(), 6);
    assert_eq!(poker.send().poke().wait().unwrap(), 7);
    let index_vat = registry.vat("index").unwrap();
    assert_eq!(stats(&index_vat).actors, 0);
    drop(vat);
    registry.shutdown();
}

#[test]
fn a_snapshot_forgets_the_sleeping_cycles_it_collects() {
    let registry = Registry::in_memory(env());
    registry.set_sleep("chain", Sleep::Always).unwrap();
    let (vat, root) = registry
        .start_vat("chain", || {
            let a = spawn(Link { next: None });
            let b = spawn(Link {
                next: Some(a.clone()),
            });
            a.call().set_next(Some(b)).unwrap();
            spawn(Link { next: Some(a) })
        })
        .unwrap();
    assert_eq!(stats(&vat).asleep, 3);
    // The a <-> b cycle is unreachable now, but reference counts keep it saved.
    root.send().set_next(None).wait().unwrap();
    assert_eq!(stats(&vat).asleep, 3);
    vat.save_snapshot().wait().unwrap();
    let s = stats(&vat);
    assert_eq!((s.actors, s.asleep), (0, 1), "{s:?}");
    registry.shutdown();
}
