//! A panic anywhere in a turn's life breaks that turn's promise and never hangs it:
//! during the turn, its save, its restore; where the vat cannot go on, it stops and says
//! why. Implausible ids in a store are `Corrupt`, not a panic or a huge allocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::collections::BTreeMap;

use gobs_runtime::portrait::{ActorId, Graph, Portrait};
use gobs_runtime::store::{
    MemoryStore, RegistryCommit, Store, StoreError, StoreErrorKind, VatImage, VatRecord,
};
use gobs_runtime::{Actor, Env, Error, PersistentVat, Ref, Vat, define_actor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// No test may hang: every wait gives up after this.
const PATIENCE: Duration = Duration::from_secs(20);

/// The panic switches are global: the tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

static PANIC_ON_SAVE: AtomicBool = AtomicBool::new(false);
static PANIC_ON_RESTORE: AtomicBool = AtomicBool::new(false);
static PANIC_ON_DROP: AtomicBool = AtomicBool::new(false);

/// A saved value whose serialization or rehydration panics on demand.
#[derive(Clone, Debug, PartialEq)]
pub struct Bomb(u64);

impl Serialize for Bomb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if PANIC_ON_SAVE.load(Ordering::SeqCst) {
            panic!("the bomb went off while saving");
        }
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Bomb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if PANIC_ON_RESTORE.load(Ordering::SeqCst) {
            panic!("the bomb went off while restoring");
        }
        u64::deserialize(d).map(Bomb)
    }
}

#[define_actor]
pub struct Fragile {
    value: Bomb,
}

#[define_actor]
impl Fragile {
    pub fn set(&mut self, v: u64) {
        self.value = Bomb(v);
    }

    pub fn get(&self) -> u64 {
        self.value.0
    }
}

fn env() -> Env {
    Env::builder("soundness").add::<Fragile>().build().unwrap()
}

fn wait<T: Send + 'static>(p: gobs_runtime::Promise<T>) -> Result<T, Error> {
    match p.wait_timeout(PATIENCE) {
        Ok(r) => r,
        Err(_) => panic!("the promise did not settle within {PATIENCE:?}: a hang"),
    }
}

#[test]
fn a_panic_while_saving_breaks_the_promise_and_the_vat_keeps_serving() {
    let _serial = serial();
    let store = MemoryStore::new();
    let (vat, root) = PersistentVat::builder("save-panics")
        .env(env())
        .store(store.clone())
        .spawn(|| gobs_runtime::spawn(Fragile { value: Bomb(1) }))
        .unwrap();
    wait(root.send().set(2)).unwrap();

    PANIC_ON_SAVE.store(true, Ordering::SeqCst);
    let err = wait(root.send().set(3)).unwrap_err();
    PANIC_ON_SAVE.store(false, Ordering::SeqCst);
    assert!(
        matches!(&err, Error::Panicked { message, .. } if message.contains("saving the turn panicked: the bomb went off while saving")),
        "{err}"
    );

    // The turn was rolled back, the vat still serves, and the next save is whole.
    assert!(!vat.is_stopped());
    assert_eq!(wait(root.send().get()).unwrap(), 2);
    wait(root.send().set(4)).unwrap();
    vat.shutdown();
    let saved = store.graph().unwrap();
    let (_, portrait) = saved.actors.iter().next().unwrap();
    let back = Fragile::restore(portrait.version, &portrait.args).unwrap();
    assert_eq!(back.value, Bomb(4));
    let (vat, root) = PersistentVat::builder("save-panics")
        .env(env())
        .store(store)
        .spawn(|| -> Ref<Fragile> { unreachable!("restored, not built") })
        .unwrap();
    assert_eq!(wait(root.send().get()).unwrap(), 4);
    vat.shutdown();
}

#[test]
fn a_panic_while_restoring_is_a_restore_error_not_a_hang() {
    let _serial = serial();
    let store = MemoryStore::new();
    let (vat, root) = PersistentVat::builder("restore-panics")
        .env(env())
        .store(store.clone())
        .spawn(|| gobs_runtime::spawn(Fragile { value: Bomb(7) }))
        .unwrap();
    wait(root.send().set(8)).unwrap();
    vat.shutdown();

    PANIC_ON_RESTORE.store(true, Ordering::SeqCst);
    let (tx, rx) = std::sync::mpsc::channel();
    let for_thread = store.clone();
    std::thread::spawn(move || {
        let r = PersistentVat::builder("restore-panics")
            .env(env())
            .store(for_thread)
            .spawn(|| -> Ref<Fragile> { unreachable!("restored, not built") });
        let _ = tx.send(r.map(|(vat, _)| vat));
    });
    let result = rx.recv_timeout(PATIENCE).expect("spawning the vat hung");
    PANIC_ON_RESTORE.store(false, Ordering::SeqCst);
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Restore { detail, .. } if detail.contains("restoring it panicked: the bomb went off while restoring")),
        "{err}"
    );

    // Nothing was lost: the store opens again once the bug is gone.
    let (vat, root) = PersistentVat::builder("restore-panics")
        .env(env())
        .store(store)
        .spawn(|| -> Ref<Fragile> { unreachable!("restored, not built") })
        .unwrap();
    assert_eq!(wait(root.send().get()).unwrap(), 8);
    vat.shutdown();
}

/// A field whose `Drop` panics on demand: undoing a turn drops the state it changed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DropBomb;

impl Drop for DropBomb {
    fn drop(&mut self) {
        if PANIC_ON_DROP.swap(false, Ordering::SeqCst) {
            panic!("the bomb went off while being dropped");
        }
    }
}

#[define_actor]
pub struct Brittle {
    bombs: Vec<DropBomb>,
}

#[define_actor]
impl Brittle {
    pub fn fail_after_touching(&mut self) -> Result<(), String> {
        self.bombs.push(DropBomb);
        PANIC_ON_DROP.store(true, Ordering::SeqCst);
        Err("this turn fails, and undoing it panics".into())
    }

    pub fn ping(&self) -> u32 {
        1
    }
}

#[test]
fn a_vat_that_cannot_undo_a_turn_stops_and_says_why() {
    let _serial = serial();
    let vat = Vat::spawn("cannot-undo").unwrap();
    let brittle = vat.spawn_actor(Brittle { bombs: Vec::new() }).unwrap();
    // Queued behind the failing turn, from inside one turn so they are in its inbox.
    let (first, later) = vat
        .run_with(&brittle, |b| {
            Ok::<_, Error>((b.send().fail_after_touching(), b.send().ping()))
        })
        .unwrap();
    let err = wait(first).unwrap_err();
    assert!(err.to_string().contains("this turn fails"), "{err}");
    let err = wait(later).unwrap_err();
    assert!(
        matches!(&err, Error::VatFailed { reason, .. } if reason.contains("undoing a failed turn panicked") && reason.contains("the bomb went off while being dropped")),
        "{err}"
    );
    assert!(vat.is_stopped());
    let err = wait(brittle.send().ping()).unwrap_err();
    assert!(matches!(err, Error::VatFailed { .. }), "{err}");
    vat.shutdown();
}

/// A store that hands back whatever graph it is given.
struct Canned(Option<Graph>);

impl Store for Canned {
    fn load_images(&mut self) -> Result<BTreeMap<String, VatRecord<VatImage>>, StoreError> {
        Ok(self
            .0
            .take()
            .map(|g| {
                (
                    "implausible".to_string(),
                    VatRecord::Saved(VatImage::from(g)),
                )
            })
            .into_iter()
            .collect())
    }
    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        Ok(Vec::new())
    }
    fn commit(&mut self, _: &RegistryCommit<'_>) -> Result<(), StoreError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "canned".into()
    }
}

fn graph_with(id: u64, next_id: u64) -> Graph {
    let portrait = Fragile { value: Bomb(1) }.save().unwrap();
    let mut actors = std::collections::BTreeMap::new();
    actors.insert(
        ActorId::from_raw(id),
        Portrait {
            name: Fragile::entry().name.to_string(),
            version: Fragile::entry().version,
            args: portrait,
        },
    );
    Graph {
        roots: vec![ActorId::from_raw(id)],
        next_id,
        actors,
    }
}

fn open_canned(graph: Graph) -> Result<(Vat, Ref<Fragile>), Error> {
    PersistentVat::builder("implausible")
        .env(env())
        .store(Canned(Some(graph)))
        .spawn(|| -> Ref<Fragile> { unreachable!("restored, not built") })
}

fn assert_corrupt(err: &Error, says: &str) {
    match err {
        Error::Store { source, .. } => {
            assert_eq!(source.kind(), StoreErrorKind::Corrupt, "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
        other => panic!("expected a corrupt store, got {other}"),
    }
}

#[test]
fn an_actor_id_of_2_pow_61_in_a_store_is_corrupt() {
    let _serial = serial();
    let id = 1u64 << 61;
    let err = open_canned(graph_with(id, 5)).unwrap_err();
    assert_corrupt(&err, &format!("it holds actor id #{id}"));
}

#[test]
fn a_next_id_past_any_vat_in_a_store_is_corrupt() {
    let _serial = serial();
    let err = open_canned(graph_with(3, u64::MAX)).unwrap_err();
    assert_corrupt(&err, "next actor id is 18446744073709551615");
}

#[test]
fn a_plausible_canned_graph_opens() {
    let _serial = serial();
    let (vat, root) = open_canned(graph_with(3, 4)).unwrap();
    assert_eq!(wait(root.send().get()).unwrap(), 1);
    vat.shutdown();
}
