//! Fuzzing entry points: each function feeds arbitrary bytes to one decoder of this crate
//! through its public path (a store opened on a file holding the bytes, a portrait
//! restored by a persistent vat, a call by method name) and panics only when an oracle
//! fails (a graph that loads does not save and load back the same).
//!
//! The `fuzz/` crate's cargo-fuzz targets call these, and the workspace test
//! `robustness/tests/fuzz_corpus.rs` replays every committed corpus through the same functions,
//! so a regression fails CI without libFuzzer. Not a stable API: behind the `fuzzing`
//! feature and hidden from the docs.
//!
//! ```
//! // Garbage is refused with an error, never a panic.
//! gobs_runtime::fuzzing::log_store(b"GOBSLOG1\xff\xff\xff\xff");
//! gobs_runtime::fuzzing::portrait(b"\x00\x00\x91\x80");
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;

use crate::actor_lib::{Cell, GHash};
use crate::portrait::{ActorId, Graph, Portrait};
use crate::store::one_vat::{ONE_VAT, read_lone_vat_file};
use crate::store::{
    Durability, LogOptions, LogStore, MemoryStore, RegistryLogStore, SqliteStore, Store, VatRecord,
};
use crate::{PersistentVat, Ref, Value, common_env};

/// A fresh directory for one input's files, removed on drop. On Linux it lives in
/// `/dev/shm` when that exists (a fuzzer writes a file per input).
fn scratch() -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    tempfile::Builder::new()
        .prefix("gobs-fuzz-")
        .tempdir_in(base)
        .ok()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> Option<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, data).ok()?;
    Some(path)
}

/// Oracle of the log: a graph that loaded is saved by a snapshot into a fresh log at
/// `fresh` and loads back equal.
fn snapshot_round_trip(graph: &Graph, fresh: &Path, options: LogOptions) {
    let Ok(mut log) = LogStore::open(fresh, options) else {
        return;
    };
    if let Err(e) = log.snapshot(graph) {
        // Only a graph the format cannot hold may be refused (never a panic).
        assert!(
            matches!(e, crate::store::StoreError::Encode { .. }),
            "snapshot of a loaded graph failed: {e}"
        );
        return;
    }
    drop(log);
    let Ok(mut again) = LogStore::open(fresh, options) else {
        return;
    };
    match again.load() {
        Ok(Some(back)) => assert_eq!(&back, graph, "graph changed through save and load"),
        other => panic!("a snapshot did not load back: {other:?}"),
    }
}

/// `data` with every frame's checksum made right, walking the frames as the log lays them
/// out (`GOBSLOG1`, then length, CRC-32, payload): so that mutated payloads reach the
/// decoder instead of stopping at the checksum.
fn fix_log_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut pos = 8usize;
    while let Some(header) = out.get(pos..pos + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(payload) = out.get(pos + 8..(pos + 8).saturating_add(len)) else {
            break;
        };
        let crc = crc32fast::hash(payload).to_le_bytes();
        out[pos + 4..pos + 8].copy_from_slice(&crc);
        pos += 8 + len;
    }
    out
}

/// `data` with a file store header that matches its body (`GOBSFILE`, version, body
/// length, CRC-32 of the body at byte 20), for the same reason.
fn fix_file_checksum(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    if out.len() >= 24 {
        let body_len = (out.len() - 24) as u64;
        out[12..20].copy_from_slice(&body_len.to_le_bytes());
        let crc = crc32fast::hash(&out[24..]).to_le_bytes();
        out[20..24].copy_from_slice(&crc);
    }
    out
}

/// `data` as a [`LogStore`] file and as a [`RegistryLogStore`] file, as it is and with its
/// frames' checksums made right: opened (normally and with [`LogOptions::salvage`]) and
/// loaded; a graph that loads must save and load back equal.
pub fn log_store(data: &[u8]) {
    log_store_file(data);
    let fixed = fix_log_checksums(data);
    if fixed != data {
        log_store_file(&fixed);
    }
}

fn log_store_file(data: &[u8]) {
    let Some(dir) = scratch() else { return };
    for salvage in [false, true] {
        let options = LogOptions {
            durability: Durability::Buffered,
            salvage,
            ..LogOptions::default()
        };
        let name = if salvage { "salvage.log" } else { "plain.log" };
        let Some(path) = write(dir.path(), name, data) else {
            return;
        };
        let loaded = LogStore::open(&path, options).and_then(|mut s| s.load());
        if let Ok(Some(graph)) = loaded {
            let fresh = dir.path().join(format!("fresh-{name}"));
            snapshot_round_trip(&graph, &fresh, options);
        }
        let rpath = dir.path().join(format!("registry-{name}"));
        if std::fs::write(&rpath, data).is_err() {
            return;
        }
        if let Ok(mut store) = RegistryLogStore::open(&rpath, options) {
            let _ = store.load_names();
            let _ = store.load();
        }
    }
}

/// `data` as a one-vat whole-graph file (`GOBSFILE`, the former file store), as it is and
/// with its header made to match its body: read; a graph that reads must come back equal
/// from the log store converting the file.
pub fn file_store(data: &[u8]) {
    file_store_file(data);
    let fixed = fix_file_checksum(data);
    if fixed != data {
        file_store_file(&fixed);
    }
}

fn file_store_file(data: &[u8]) {
    let Some(dir) = scratch() else { return };
    let Some(path) = write(dir.path(), "state.gobs", data) else {
        return;
    };
    let Ok(Some(graph)) = read_lone_vat_file(&path) else {
        return;
    };
    let options = LogOptions::with_durability(Durability::Buffered);
    let converted = RegistryLogStore::open(&path, options).and_then(|mut s| s.load());
    match converted {
        Ok(vats) => assert_eq!(
            vats.get(ONE_VAT),
            Some(&VatRecord::Saved(graph)),
            "a whole-graph file changed through conversion"
        ),
        // Only a graph the log format cannot hold may be refused (never a panic).
        Err(e) => assert!(
            matches!(e, crate::store::StoreError::Encode { .. }),
            "converting a whole-graph file that reads failed: {e}"
        ),
    }
}

/// Reads one SQL value from `data`: a tag byte (its low 3 bits: null, integer, real,
/// text, blob) and its payload (8 bytes for numbers, a length byte and that many bytes for
/// text and blobs). Small integers are likelier, so that rows refer to each other.
fn sql_value(data: &mut &[u8]) -> Option<SqlValue> {
    let (&tag, rest) = data.split_first()?;
    *data = rest;
    let mut take = |n: usize| -> Vec<u8> {
        let n = n.min(data.len());
        let (a, b) = data.split_at(n);
        *data = b;
        a.to_vec()
    };
    Some(match tag & 7 {
        0 => SqlValue::Null,
        1 => {
            let mut b = [0u8; 8];
            let got = take(8);
            b[..got.len()].copy_from_slice(&got);
            SqlValue::Integer(i64::from_le_bytes(b))
        }
        2 => {
            let mut b = [0u8; 8];
            let got = take(8);
            b[..got.len()].copy_from_slice(&got);
            SqlValue::Real(f64::from_le_bytes(b))
        }
        3 => {
            let n = take(1).first().copied().unwrap_or(0);
            SqlValue::Text(String::from_utf8_lossy(&take(usize::from(n))).into_owned())
        }
        4 => {
            let n = take(1).first().copied().unwrap_or(0);
            SqlValue::Blob(take(usize::from(n)))
        }
        // Tags 5..7: a small integer in the tag's high bits.
        _ => SqlValue::Integer(i64::from(tag >> 3)),
    })
}

/// Rows of a [`SqliteStore`] database: a real database is made with the store itself (so
/// its schema and format mark are right), then `data` is read as rows (a table byte, then
/// one [`sql_value`] per column) inserted as they come (any storage class in any column,
/// as a hostile or damaged file can hold), and the store is opened and loaded.
pub fn sqlite_store(data: &[u8]) {
    const TABLES: [(&str, &str, usize); 5] = [
        ("vats", "id, name, saved, roots, next_id", 5),
        ("types", "id, name", 2),
        ("names", "id, name", 2),
        ("actors", "vat, id, type, version, args", 5),
        ("meta", "key, value", 2),
    ];
    let Some(dir) = scratch() else { return };
    let path = dir.path().join("state.sqlite");
    // The store writes its schema on open.
    if SqliteStore::open(&path, Durability::Buffered).is_err() {
        return;
    }
    let Ok(conn) = rusqlite::Connection::open(&path) else {
        return;
    };
    let mut rest = data;
    while let Some((&table, tail)) = rest.split_first() {
        rest = tail;
        let Some(&(name, cols, n)) = TABLES.get(usize::from(table) % TABLES.len()) else {
            return;
        };
        let values: Vec<SqlValue> = (0..n).filter_map(|_| sql_value(&mut rest)).collect();
        if values.len() < n {
            break;
        }
        let marks = vec!["?"; n].join(", ");
        let sql = format!("INSERT OR REPLACE INTO {name} ({cols}) VALUES ({marks})");
        // NOT NULL and UNIQUE refuse some rows; the rest go in.
        let _ = conn.execute(&sql, rusqlite::params_from_iter(values));
    }
    drop(conn);
    if let Ok(mut store) = SqliteStore::open(&path, Durability::Buffered) {
        let _ = store.load_names();
        let _ = store.load();
    }
}

/// The saved portrait of `Cell::new(Int(1))`, made by a real vat.
fn cell_portrait() -> Option<Portrait> {
    static CELL: std::sync::OnceLock<Option<Portrait>> = std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        let store = MemoryStore::new();
        let (vat, _) = PersistentVat::builder("fuzz-seed")
            .env(common_env())
            .store(store.clone())
            .spawn(|| crate::spawn(Cell::new(Value::Int(1))))
            .ok()?;
        vat.shutdown();
        store.graph()?.actors.into_values().next()
    })
    .clone()
}

/// Restores the vat saved in `store`, whose root must be a `T`; `None` when that fails.
fn restore<T: crate::Actor>(store: &MemoryStore) -> Option<(crate::Vat, Ref<T>)> {
    store.graph()?;
    PersistentVat::builder("fuzz")
        .env(common_env())
        .store(store.clone())
        .spawn(unreachable_root::<T>)
        .ok()
}

/// The root constructor of a vat that must restore: never called when the store holds a
/// graph, which [`restore`] checked first.
fn unreachable_root<T: crate::Actor>() -> Ref<T> {
    panic!("restore() checked that the store holds a graph, so the vat restores it")
}

/// The answer to `read` (a method taking no arguments) on `root`.
fn read<T: crate::Actor>(root: &Ref<T>, read: &str) -> Option<Vec<u8>> {
    root.invoke(read, vec![0x90]).wait().ok()
}

/// A saved graph of one persistent vat of [`common_env`] whose root (actor #0) has the
/// portrait `data` describes (byte 0: the type, [`GHash`] or [`Cell`]; byte 1: the
/// version; the rest: the constructor args), beside a `Cell` #1 for references to reach.
/// The vat restores it; if that works, the root answers a read by name, and a snapshot of
/// it restores to the same answer.
pub fn portrait(data: &[u8]) {
    let [kind, version, args @ ..] = data else {
        return;
    };
    if kind & 1 == 0 {
        portrait_of::<GHash>(u32::from(*version), args, "data");
    } else {
        portrait_of::<Cell>(u32::from(*version), args, "get");
    }
}

fn portrait_of<T: crate::Actor>(version: u32, args: &[u8], read_method: &str) {
    let mut actors = BTreeMap::new();
    actors.insert(
        ActorId(0),
        Portrait {
            name: T::entry().name.to_string(),
            version,
            args: args.to_vec(),
        },
    );
    if let Some(cell) = cell_portrait() {
        actors.insert(ActorId(1), cell);
    }
    let graph = Graph {
        roots: vec![ActorId(0)],
        next_id: 2,
        actors,
    };
    let store = MemoryStore::new();
    store.put("fuzz", graph);
    let Some((vat, root)) = restore::<T>(&store) else {
        return;
    };
    let before = read(&root, read_method);
    let saved = vat.save_snapshot().wait();
    vat.shutdown();
    let (Some(before), Ok(())) = (before, saved) else {
        return;
    };
    let Some((vat, root)) = restore::<T>(&store) else {
        panic!("a portrait that restored once, saved again, does not restore");
    };
    let after = read(&root, read_method);
    vat.shutdown();
    assert_eq!(
        after,
        Some(before),
        "state changed through save and restore"
    );
}

/// A call by method name with arguments `data` describes (byte 0: the actor, a [`GHash`]
/// holding a few entries or a [`Cell`]; byte 1: the method, by its index in the actor's
/// method table; the rest: the MessagePack arguments) on a persistent vat of
/// [`common_env`]. What the vat answers after the call, it must answer once restored.
pub fn by_name(data: &[u8]) {
    let [actor, method, args @ ..] = data else {
        return;
    };
    if actor & 1 == 0 {
        by_name_on(
            || {
                let mut h = GHash::new();
                h.set("a".into(), Value::Int(1));
                h.set("b".into(), Value::from("two"));
                h
            },
            *method,
            args,
            "data",
        );
    } else {
        by_name_on(|| Cell::new(Value::Int(7)), *method, args, "get");
    }
}

fn by_name_on<T: crate::Actor>(make: fn() -> T, method: u8, args: &[u8], read_method: &str) {
    let store = MemoryStore::new();
    let spawned = PersistentVat::builder("fuzz")
        .env(common_env())
        .store(store.clone())
        .spawn(move || crate::spawn(make()));
    let Ok((vat, root)) = spawned else { return };
    let methods = root.methods();
    let Some(info) = methods.get(usize::from(method) % methods.len().max(1)) else {
        vat.shutdown();
        return;
    };
    let _ = root.invoke(info.name, args.to_vec()).wait();
    let before = read(&root, read_method);
    vat.shutdown();
    let Some(before) = before else { return };
    let Some((vat, root)) = restore::<T>(&store) else {
        panic!("a vat changed by a call by name does not restore");
    };
    let after = read(&root, read_method);
    vat.shutdown();
    assert_eq!(after, Some(before), "state changed through restore");
}
