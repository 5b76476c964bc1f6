//! A persistent vat whose store refuses a commit (a full disk): the churn is rolled back
//! and its promise broken with the store's error, reads keep being answered while the
//! store still refuses writes, and once it accepts them the vat saves again — its next
//! save is a full snapshot, since the refused delta never reached the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gobs_runtime::actor_lib::Cell;
use std::collections::BTreeMap;

use gobs_runtime::store::{
    MemoryStore, RegistryCommit, Store, StoreError, VatImage, VatRecord, VatWrite,
};
use gobs_runtime::{Error, PersistentVat, Value, common_env, spawn};

/// A memory store that refuses every write while `full` is set, as a full disk does.
#[derive(Clone, Default)]
struct FlakyStore {
    inner: MemoryStore,
    full: Arc<AtomicBool>,
    writes: Arc<Mutex<Vec<&'static str>>>,
}

impl FlakyStore {
    fn refuse(&self) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            return Err(StoreError::Io {
                op: "appending to",
                path: "flaky".into(),
                source: io::Error::from(io::ErrorKind::StorageFull),
            });
        }
        Ok(())
    }
}

impl Store for FlakyStore {
    fn load_images(&mut self) -> Result<BTreeMap<String, VatRecord<VatImage>>, StoreError> {
        self.inner.load_images()
    }

    fn load_names(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        self.inner.load_names()
    }

    fn commit(&mut self, commit: &RegistryCommit<'_>) -> Result<(), StoreError> {
        let snapshot = commit
            .writes
            .iter()
            .any(|(_, w)| matches!(w, VatWrite::Snapshot(_)));
        let what = if snapshot { "snapshot" } else { "commit" };
        self.writes.lock().unwrap().push(what);
        self.refuse()?;
        self.inner.commit(commit)
    }

    fn describe(&self) -> String {
        "flaky".into()
    }
}

#[test]
fn reads_are_served_while_the_store_refuses_writes_and_saving_resumes_after() {
    let store = FlakyStore::default();
    let (vat, cell) = PersistentVat::builder("flaky")
        .env(common_env())
        .store(store.clone())
        .spawn(|| spawn(Cell::new(Value::Int(1))))
        .unwrap();
    cell.send().set(Value::Int(2)).wait().unwrap();
    store.full.store(true, Ordering::SeqCst);
    let err = cell.send().set(Value::Int(3)).wait().unwrap_err();
    let Error::Store { source, .. } = &err else {
        panic!("{err}");
    };
    assert!(source.is_disk_full(), "{err}");
    store.writes.lock().unwrap().clear();
    // Still full: reads are answered (with the acknowledged state) and write nothing.
    for _ in 0..3 {
        assert_eq!(cell.send().get().wait().unwrap(), Value::Int(2));
    }
    assert!(
        store.writes.lock().unwrap().is_empty(),
        "a read tried to write"
    );
    // Room again: the next write saves (as a snapshot), and a restart sees it.
    store.full.store(false, Ordering::SeqCst);
    cell.send().set(Value::Int(4)).wait().unwrap();
    assert_eq!(store.writes.lock().unwrap().as_slice(), ["snapshot"]);
    vat.shutdown();
    let (vat, cell) = PersistentVat::builder("flaky")
        .env(common_env())
        .store(store)
        .spawn(|| -> gobs_runtime::Ref<Cell> { unreachable!("restored") })
        .unwrap();
    assert_eq!(cell.send().get().wait().unwrap(), Value::Int(4));
    vat.shutdown();
}
