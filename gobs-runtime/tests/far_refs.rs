//! Far references (a `Ref<T>` to an actor on another node) in portraits, with a stand-in
//! network layer: saved as their sturdyref in the log and the SQLite store, restored
//! through the node attached to *their* registry — lazily, so a reference restored
//! before the node is attached finds it at its first send — and a far object that cannot
//! be saved fails the save with its own reason. Near calls and closure sends on a far
//! reference are errors, not panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::any::Any;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use gobs_runtime::carry::{Carried, CarriedReply, encode_carrying};
use gobs_runtime::far::{FarObject, FarResolver};
use gobs_runtime::store::{Durability, LogOptions};
use gobs_runtime::{
    Error, Promise, Ref, Registry, StoreKind, common_env, define_actor, persistence_env, spawn,
};

#[define_actor]
pub struct Account {
    balance: u64,
}

#[define_actor]
impl Account {
    pub fn deposit(&mut self, amount: u64) -> u64 {
        self.balance += amount;
        self.balance
    }
}

/// Keeps far accounts in its portrait.
#[define_actor]
pub struct Auditor {
    accounts: Vec<Ref<Account>>,
}

#[define_actor]
impl Auditor {
    pub fn watch(&mut self, account: Ref<Account>) -> usize {
        self.accounts.push(account);
        self.accounts.len()
    }

    pub fn deposit_first(&self, amount: u64) -> Promise<u64> {
        self.accounts[0].send().deposit(amount)
    }

    pub fn first(&self) -> Ref<Account> {
        self.accounts[0].clone()
    }
}

/// A stand-in far object: answers `deposit(n)` with `n + 1000`, and records which node
/// (resolver) made it.
struct FakeFar {
    sturdyref: Result<String, String>,
    node: &'static str,
}

impl FarObject for FakeFar {
    fn send_by_name(
        &self,
        method: &str,
        args: Vec<u8>,
        _refs: Vec<Carried>,
    ) -> Promise<CarriedReply> {
        assert_eq!(method, "deposit");
        let (amount,): (u64,) = rmp_serde::from_slice(&args).unwrap();
        Promise::fulfilled(encode_carrying(&(amount + 1000)).unwrap())
    }

    fn describe(&self) -> String {
        format!("fake object on {}", self.node)
    }

    fn sturdyref(&self) -> Result<String, String> {
        self.sturdyref.clone()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A stand-in node: revives every sturdyref as a [`FakeFar`], and remembers them.
struct FakeNode {
    name: &'static str,
    revived: Mutex<Vec<String>>,
}

impl FarResolver for FakeNode {
    fn revive(&self, sturdyref: &str) -> Result<Arc<dyn FarObject>, String> {
        self.revived.lock().unwrap().push(sturdyref.to_string());
        Ok(Arc::new(FakeFar {
            sturdyref: Ok(sturdyref.to_string()),
            node: self.name,
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn far_account(uri: &str) -> Ref<Account> {
    Ref::from_far(Arc::new(FakeFar {
        sturdyref: Ok(uri.to_string()),
        node: "the first process",
    }))
}

fn env() -> gobs_runtime::Env {
    persistence_env!("far-refs", extends: [common_env()], actors: [Account, Auditor]).unwrap()
}

const URI: &str = "ocapn://bank.tcp-tls/s/c2VjcmV0?host=127.0.0.1&port=1";

fn round_trip(kind: StoreKind) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
    let (_, auditor) = registry
        .start_vat("auditor", || spawn(Auditor { accounts: vec![] }))
        .unwrap();
    let account = far_account(URI);
    assert!(account.is_far());
    assert_eq!(auditor.send().watch(account).wait().unwrap(), 1);
    assert_eq!(auditor.send().deposit_first(5).wait().unwrap(), 1005);
    registry.shutdown();
    drop(registry);

    // A new process: the reference is restored before any node is attached.
    let registry = Registry::open(dir.path(), env(), kind).unwrap();
    let (_, auditor): (_, Ref<Auditor>) = registry.restore_vat("auditor").unwrap();
    let first = auditor.send().first().wait().unwrap();
    assert!(first.is_far());
    assert_eq!(first.far_object().unwrap().sturdyref(), Ok(URI.to_string()));
    let err = auditor
        .send()
        .deposit_first(1)
        .wait()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(URI) && err.contains("no network node is attached"),
        "{err}"
    );
    // Attached afterwards, the registry's node is found at the next send.
    let node = Arc::new(FakeNode {
        name: "the auditor's node",
        revived: Mutex::new(Vec::new()),
    });
    registry.attach_far(node.clone());
    assert_eq!(auditor.send().deposit_first(7).wait().unwrap(), 1007);
    assert_eq!(*node.revived.lock().unwrap(), vec![URI.to_string()]);
    assert!(
        first.describe().contains("the auditor's node"),
        "{}",
        first.describe()
    );
    registry.shutdown();
}

#[test]
fn a_far_ref_round_trips_through_the_log_store() {
    round_trip(StoreKind::Log(LogOptions::default()));
}

#[test]
fn a_far_ref_round_trips_through_the_sqlite_store() {
    round_trip(StoreKind::Sqlite(Durability::EveryCommit));
}

#[test]
fn each_registry_finds_its_own_node() {
    let (a, b) = (Registry::in_memory(env()), Registry::in_memory(env()));
    for r in [&a, &b] {
        let (_, auditor) = r
            .start_vat("auditor", || spawn(Auditor { accounts: vec![] }))
            .unwrap();
        auditor.send().watch(far_account(URI)).wait().unwrap();
    }
    let (a, b) = (a.restart().unwrap(), b.restart().unwrap());
    let nodes = [("node a", &a), ("node b", &b)].map(|(name, r)| {
        let node = Arc::new(FakeNode {
            name,
            revived: Mutex::new(Vec::new()),
        });
        r.attach_far(node.clone());
        node
    });
    for (r, name) in [(&a, "node a"), (&b, "node b")] {
        let (_, auditor): (_, Ref<Auditor>) = r.restore_vat("auditor").unwrap();
        assert_eq!(auditor.send().deposit_first(1).wait().unwrap(), 1001);
        let first = auditor.send().first().wait().unwrap();
        assert!(first.describe().contains(name), "{}", first.describe());
    }
    assert_eq!(nodes[0].revived.lock().unwrap().len(), 1);
    assert_eq!(nodes[1].revived.lock().unwrap().len(), 1);
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_far_ref_that_cannot_be_saved_fails_the_save_with_its_reason() {
    let registry = Registry::in_memory(env());
    let (_, auditor) = registry
        .start_vat("auditor", || spawn(Auditor { accounts: vec![] }))
        .unwrap();
    let unsaveable = Ref::<Account>::from_far(Arc::new(FakeFar {
        sturdyref: Err(
            "peer ocapn://goblins.tcp-tls gives no sturdyrefs; keep one it publishes".into(),
        ),
        node: "here",
    }));
    let err = auditor
        .send()
        .watch(unsaveable)
        .wait()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("saving a Auditor")
            && err.contains("peer ocapn://goblins.tcp-tls gives no sturdyrefs"),
        "{err}"
    );
    registry.shutdown();
}

#[test]
fn near_calls_and_closures_on_a_far_ref_are_errors_naming_the_fix() {
    let account = far_account(URI);
    let err = account.call_with(|a| a.balance).unwrap_err();
    assert!(matches!(err, Error::FarCall { .. }), "{err:?}");
    assert!(err.to_string().contains("use `.send()`"), "{err}");
    let err = account.send_with(|a| a.balance).wait().unwrap_err();
    assert!(matches!(err, Error::NotByName { .. }), "{err:?}");
    // Equal to its clones, not to another far reference to the same sturdyref.
    assert_eq!(account, account.clone());
    assert_ne!(account, far_account(URI));
    // Hashed as compared: clones alike.
    let state = std::hash::RandomState::new();
    assert_eq!(state.hash_one(&account), state.hash_one(account.clone()));
}
