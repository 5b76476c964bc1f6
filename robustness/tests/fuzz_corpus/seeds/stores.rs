//! Seeds for the store targets: log, one-vat file and SQLite stores written by the real
//! stores, with a graph that holds every kind of value.

use super::*;

pub(super) fn stores() {
    let dir = tempfile::tempdir().unwrap();
    // LogStore: one commit, many commits, after a snapshot, a torn tail.
    let log = dir.path().join("a.log");
    let vat = rich_graph(LogStore::open(&log, LogOptions::default()).unwrap());
    vat.shutdown();
    drop(vat);
    let bytes = std::fs::read(&log).unwrap();
    put("log_store", "ghash-deltas", &bytes);
    put("log_store", "torn-tail", &bytes[..bytes.len() - 3]);
    put("log_store", "header-only", &bytes[..8]);
    let mut store = LogStore::open(&log, LogOptions::default()).unwrap();
    let graph = store.load().unwrap().unwrap();
    store.snapshot(&graph).unwrap();
    drop(store);
    put("log_store", "snapshot", &std::fs::read(&log).unwrap());
    // A registry log of two vats referring to each other, as gobs-app writes it.
    let reg_dir = dir.path().join("reg");
    let registry = Registry::open(
        &reg_dir,
        common_env(),
        StoreKind::Log(LogOptions::default()),
    )
    .unwrap();
    let (_v, table) = registry
        .start_vat("tables", || spawn(GHash::new()))
        .unwrap();
    let (_w, cell) = registry
        .start_vat("cells", || spawn(Cell::new(1.into())))
        .unwrap();
    table.send().set("cell".into(), cell.into()).wait().unwrap();
    registry.shutdown();
    put(
        "log_store",
        "registry",
        &std::fs::read(reg_dir.join("registry.log")).unwrap(),
    );
    // gobs-app's own state: a boss with a machine.
    let state = dir.path().join("state");
    let config = gobs_app::config::Config::default();
    {
        let backend = gobs_app::backend::boss::BossBackend::open(&state, &config).unwrap();
        let cancel = gobs_app::model::Cancel::new();
        let r = gobs_app::ops::Request::CreateMachine {
            name: "web-1".parse().unwrap(),
            provider: Some("dummy".into()),
            host: None,
            progress: Default::default(),
        }
        .execute(&backend, &cancel);
        assert!(!matches!(r, gobs_app::ops::Response::Error(_)), "{r:?}");
        let mut backend = backend;
        use gobs_app::ops::Backend;
        backend.close().unwrap();
    }
    for entry in walk(&state) {
        if entry.extension().is_some_and(|e| e == "log") {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            put(
                "log_store",
                &format!("app-{name}"),
                &std::fs::read(&entry).unwrap(),
            );
        }
    }
    // Whole-graph files (the former file store, which no code writes any more): the
    // seeds already in the corpus stay, and the frozen fixture.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gobs-runtime/tests/fixtures/account-v1.gobs");
    put("file_store", "account-v1", &std::fs::read(fixture).unwrap());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Rows in the format `gobs_runtime::fuzzing::sqlite_store` reads: a table byte, then
/// each column as a tag and payload.
pub(super) fn sqlite() {
    use rusqlite::types::Value as V;
    let dir = tempfile::tempdir().unwrap();
    let reg_dir = dir.path().join("reg");
    let registry = Registry::open(
        &reg_dir,
        common_env(),
        StoreKind::Sqlite(Durability::EveryCommit),
    )
    .unwrap();
    let (_v, table) = registry
        .start_vat("tables", || spawn(GHash::new()))
        .unwrap();
    let (_w, cell) = registry
        .start_vat("cells", || spawn(Cell::new(1.into())))
        .unwrap();
    table.send().set("cell".into(), cell.into()).wait().unwrap();
    table.send().set("n".into(), Value::Int(3)).wait().unwrap();
    registry.shutdown();
    drop(registry);
    let path = reg_dir.join("registry.sqlite");
    // Check the store reads it, then dump its rows.
    SqliteStore::open(&path, Durability::Buffered)
        .unwrap()
        .load()
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables = [
        ("vats", "id, name, saved, roots, next_id"),
        ("types", "id, name"),
        ("names", "id, name"),
        ("actors", "vat, id, type, version, args"),
        ("meta", "key, value"),
    ];
    let encode = |out: &mut Vec<u8>, v: &V| match v {
        V::Null => out.push(0),
        V::Integer(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        V::Real(f) => {
            out.push(2);
            out.extend_from_slice(&f.to_le_bytes());
        }
        V::Text(t) => {
            out.push(3);
            out.push(u8::try_from(t.len()).unwrap());
            out.extend_from_slice(t.as_bytes());
        }
        V::Blob(b) => {
            out.push(4);
            out.push(u8::try_from(b.len()).unwrap());
            out.extend_from_slice(b);
        }
    };
    let mut all = Vec::new();
    for (index, (table, cols)) in tables.iter().enumerate() {
        let n = cols.split(", ").count();
        let mut q = conn
            .prepare(&format!("SELECT {cols} FROM {table}"))
            .unwrap();
        let mut rows = q.query([]).unwrap();
        let mut mine = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let mut bytes = vec![u8::try_from(index).unwrap()];
            for c in 0..n {
                encode(&mut bytes, &row.get::<_, V>(c).unwrap());
            }
            mine.extend_from_slice(&bytes);
        }
        put("sqlite_store", &format!("{table}-rows"), &mine);
        all.extend_from_slice(&mine);
    }
    put("sqlite_store", "all-rows", &all);
    // A row of the wrong storage class in a typed column.
    let mut wrong = all.clone();
    wrong.extend_from_slice(&[3, 3, 1, b'x', 3, 1, b'y', 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    put("sqlite_store", "wrong-types", &wrong);
}
