//! Stores meeting a failing disk: an injected `ENOSPC` half-way through a write, `EIO` on a
//! write and `EIO` on fsync (the `fault-injection` hooks of `gobs_runtime::store::fault`),
//! at many instants chosen by a seeded generator; and a real `ENOSPC` on a small tmpfs
//! (needs to mount one: reported as ignored without `GOBS_REQUIRE_PRIVILEGED` or `CI`,
//! failing by name with it where mounting is refused).
//!
//! After every fault: the churn that met it is refused and its promise broken with a
//! storage error (a full disk says so), the vat still answers reads with the last
//! acknowledged state, nothing acknowledged is lost across a restart, and the store goes
//! on (a failed write is taken back in place; after a failed fsync the handle refuses
//! writes until the vat is restarted, since the kernel may have dropped the dirty pages).
//! For the lone [`LogStore`] and for the registry log (gobs-app's default store).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use gobs_testkit::{Need, Tmpfs};

use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::store::fault::{FaultOp, arm};
use gobs_runtime::store::{Durability, LogOptions, LogStore, StoreErrorKind};
use gobs_runtime::{Error, PersistentVat, Ref, Registry, StoreKind, Value, Vat, common_env, spawn};

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

/// A small deterministic generator (xorshift64*), so a failing round can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Copy, Clone, Debug)]
struct Fault {
    op: FaultOp,
    errno: i32,
}

fn pick(rng: &mut Rng) -> Fault {
    match rng.below(3) {
        0 => Fault {
            op: FaultOp::Write,
            errno: ENOSPC,
        },
        1 => Fault {
            op: FaultOp::Write,
            errno: EIO,
        },
        _ => Fault {
            op: FaultOp::Sync,
            errno: EIO,
        },
    }
}

/// Checks a churn's failure is a storage error of the right kind.
fn assert_storage_error(err: &Error, fault: Fault) {
    let Error::Store { source, .. } = err else {
        panic!("not a storage error: {err}");
    };
    let want = if fault.errno == ENOSPC {
        StoreErrorKind::DiskFull
    } else {
        StoreErrorKind::Io
    };
    assert_eq!(source.kind(), want, "{err}");
    let text = err.to_string();
    if fault.errno == ENOSPC {
        assert!(text.contains("No space left on device"), "{text}");
        assert!(source.is_disk_full());
    } else {
        assert!(text.contains("Input/output error"), "{text}");
    }
}

fn open_cell(path: &Path) -> (Vat, Ref<Cell>) {
    PersistentVat::builder("faults")
        .env(common_env())
        .store(LogStore::open(path, LogOptions::default()).unwrap())
        .spawn(|| spawn(Cell::new(Value::Int(0))))
        .unwrap()
}

fn int(v: Value) -> i64 {
    v.as_int().unwrap()
}

#[test]
fn a_log_store_refuses_the_churn_keeps_serving_and_loses_nothing_under_many_faults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cell.log");
    let mut rng = Rng(0x5eed_0001);
    let (mut vat, mut cell) = open_cell(&path);
    let mut acked = 0i64;
    let mut next = 1i64;
    let (mut refused, mut restarts) = (0, 0);
    for round in 0..60 {
        // A few churns that work (now and then enough to compact).
        for _ in 0..rng.below(4) {
            cell.send().set(Value::Int(next)).wait().unwrap();
            acked = next;
            next += 1;
        }
        let fault = pick(&mut rng);
        let guard = arm(dir.path(), fault.op, fault.errno, 1);
        let failed = cell.send().set(Value::Int(next)).wait();
        assert_eq!(guard.remaining(), 0, "round {round}: the fault was not hit");
        drop(guard);
        let err = failed.expect_err("a churn whose write failed was acknowledged");
        assert_storage_error(&err, fault);
        refused += 1;
        let unacked = next;
        next += 1;
        // The churn was rolled back: reads answer the last acknowledged state.
        assert_eq!(
            int(cell.send().get().wait().unwrap()),
            acked,
            "round {round}"
        );
        // Room again (the fault is gone): a failed write was taken back in place, so the
        // store goes on; a failed fsync leaves the handle refusing writes until a restart.
        match cell.send().set(Value::Int(next)).wait() {
            Ok(()) => {
                assert_eq!(
                    fault.op,
                    FaultOp::Write,
                    "round {round}: went on after {fault:?}"
                );
                acked = next;
            }
            Err(e) => {
                assert_eq!(fault.op, FaultOp::Sync, "round {round}: {e}");
                assert!(e.to_string().contains("refuses writes"), "{e}");
                vat.shutdown();
                (vat, cell) = open_cell(&path);
                restarts += 1;
                // The refused churn reached the OS before its fsync failed: it may be
                // there. Everything acknowledged is.
                let now = int(cell.send().get().wait().unwrap());
                assert!(now == acked || now == unacked, "round {round}: {now}");
                cell.send().set(Value::Int(next)).wait().unwrap();
                acked = next;
            }
        }
        next += 1;
    }
    vat.shutdown();
    let (vat, cell) = open_cell(&path);
    assert_eq!(int(cell.send().get().wait().unwrap()), acked);
    vat.shutdown();
    assert_eq!(refused, 60);
    assert!(
        restarts > 5,
        "the generator picked only {restarts} fsync faults"
    );
}

fn open_registry(dir: &Path) -> (Registry, Ref<GHash>) {
    let registry =
        Registry::open(dir, common_env(), StoreKind::Log(LogOptions::default())).unwrap();
    let (_vat, table) = registry
        .start_vat("tables", || spawn(GHash::new()))
        .unwrap();
    (registry, table)
}

fn keys(table: &Ref<GHash>) -> Vec<String> {
    let mut k = table.send().keys().wait().unwrap();
    k.sort();
    k
}

#[test]
fn the_registry_log_refuses_the_churn_keeps_serving_and_loses_nothing_under_many_faults() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut rng = Rng(0x5eed_0002);
    let (mut registry, mut table) = open_registry(&state);
    // A second vat the table refers to: a commit that saves the reference writes both.
    let (_cells, cell) = registry
        .start_vat("cells", || spawn(Cell::new(Value::Int(1))))
        .unwrap();
    table.send().set("cell".into(), cell.into()).wait().unwrap();
    let mut acked: Vec<String> = vec!["cell".into()];
    let mut n = 0;
    for round in 0..40 {
        for _ in 0..rng.below(3) {
            let k = format!("k{n}");
            n += 1;
            table.send().set(k.clone(), Value::Int(n)).wait().unwrap();
            acked.push(k);
        }
        let fault = pick(&mut rng);
        let k = format!("k{n}");
        n += 1;
        let guard = arm(&state, fault.op, fault.errno, 1);
        let failed = table.send().set(k.clone(), Value::Int(n)).wait();
        assert_eq!(guard.remaining(), 0, "round {round}: the fault was not hit");
        drop(guard);
        assert_storage_error(&failed.expect_err("acknowledged a failed write"), fault);
        acked.sort();
        assert_eq!(
            keys(&table),
            acked,
            "round {round}: reads after a refused churn"
        );
        let k2 = format!("k{n}");
        n += 1;
        match table.send().set(k2.clone(), Value::Int(n)).wait() {
            Ok(()) => {
                assert_eq!(fault.op, FaultOp::Write, "round {round}");
                acked.push(k2);
            }
            Err(e) => {
                assert_eq!(fault.op, FaultOp::Sync, "round {round}: {e}");
                registry = registry.restart().unwrap();
                let (_vat, t) = registry.restore_vat::<Ref<GHash>>("tables").unwrap();
                table = t;
                let now = keys(&table);
                let mut with_unacked = acked.clone();
                with_unacked.push(k.clone());
                with_unacked.sort();
                assert!(
                    now == acked || now == with_unacked,
                    "round {round}: {now:?}"
                );
                acked = now;
                // The reference into the other vat came back with it.
                let c = table.send().get("cell".into()).wait().unwrap().unwrap();
                let c = c.as_ref_of::<Cell>().unwrap();
                assert_eq!(int(c.send().get().wait().unwrap()), 1);
            }
        }
    }
    registry = registry.restart().unwrap();
    let (_vat, table) = registry.restore_vat::<Ref<GHash>>("tables").unwrap();
    acked.sort();
    assert_eq!(keys(&table), acked);
    registry.shutdown();
}

/// Fills a small tmpfs through a registry of `kind` until a churn is refused; checks the
/// refusal, the reads, the restart, and that the store goes on once the disk has room.
fn fill_and_recover(kind: StoreKind, label: &str) {
    gobs_testkit::need(&[Need::MountTmpfs]);
    let disk = Tmpfs::mount("256k");
    let state = disk.path().join("state");
    let registry = Registry::open(&state, common_env(), kind.clone()).unwrap();
    let (_vat, table) = registry
        .start_vat("tables", || spawn(GHash::new()))
        .unwrap();
    let blob = Value::Bytes(vec![7; 2000]);
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..2000 {
        let k = format!("k{i:04}");
        match table.send().set(k.clone(), blob.clone()).wait() {
            Ok(()) => acked.push(k),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let err = failure.unwrap_or_else(|| panic!("{label}: 256 KiB never filled up"));
    let Error::Store { source, .. } = &err else {
        panic!("{label}: not a storage error: {err}");
    };
    assert!(source.is_disk_full(), "{label}: {err}");
    assert!(
        err.to_string().to_lowercase().contains("disk"),
        "{label}: {err}"
    );
    // The vat still serves reads, with exactly what was acknowledged.
    assert_eq!(keys(&table), acked, "{label}");
    // Room again: the same running registry goes on, or (if the store refuses writes
    // after the failure) a restart does; nothing acknowledged is lost either way.
    disk.grow("8m");
    let registry = match table.send().set("after".into(), Value::Int(1)).wait() {
        Ok(()) => {
            acked.push("after".into());
            registry.restart().unwrap()
        }
        Err(e) => {
            eprintln!("{label}: after the disk had room again, the running store said: {e}");
            let registry = registry.restart().unwrap();
            let (_vat, t) = registry.restore_vat::<Ref<GHash>>("tables").unwrap();
            t.send().set("after".into(), Value::Int(1)).wait().unwrap();
            acked.push("after".into());
            registry
        }
    };
    let (_vat, table) = registry.restore_vat::<Ref<GHash>>("tables").unwrap();
    acked.sort();
    assert_eq!(keys(&table), acked, "{label}: after a restart");
    registry.shutdown();
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs to mount a tmpfs (root or CAP_SYS_ADMIN): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_registry_log_on_a_full_tmpfs_refuses_keeps_serving_and_goes_on() {
    fill_and_recover(StoreKind::Log(LogOptions::default()), "registry log");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs to mount a tmpfs (root or CAP_SYS_ADMIN): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_sqlite_registry_on_a_full_tmpfs_refuses_keeps_serving_and_goes_on() {
    fill_and_recover(StoreKind::Sqlite(Durability::EveryCommit), "sqlite");
}
