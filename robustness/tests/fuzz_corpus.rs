//! Replays every fuzz target's committed corpus (`fuzz/corpus/TARGET/`) through the same
//! entry points the cargo-fuzz targets call (`gobs_*::fuzzing`), so an input that once
//! crashed, or a seed that once decoded, fails CI if it ever panics again — on stable,
//! without libFuzzer.
//!
//! The seed corpus is made from real files and messages by the ignored test
//! `write_seed_corpus` (see `fuzz/README.md`):
//!
//! ```text
//! cargo test -p gobs-robustness --test fuzz_corpus -- --ignored write_seed_corpus
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// A fuzz target's entry point.
type Entry = fn(&[u8]);

/// Every fuzz target with its entry point: the table `fuzz/fuzz_targets/` mirrors.
const TARGETS: &[(&str, Entry)] = &[
    ("log_store", gobs_runtime::fuzzing::log_store),
    ("file_store", gobs_runtime::fuzzing::file_store),
    ("sqlite_store", gobs_runtime::fuzzing::sqlite_store),
    ("portrait", gobs_runtime::fuzzing::portrait),
    ("by_name", gobs_runtime::fuzzing::by_name),
    ("daemon_frame", gobs_app::fuzzing::daemon_frame),
    ("config", gobs_app::fuzzing::config),
    ("syrup", gobs_ocapn::fuzzing::syrup),
    ("captp_message", gobs_ocapn::fuzzing::captp_message),
    ("captp_session", gobs_ocapn::fuzzing::captp_session),
    ("ocapn_uri", gobs_ocapn::fuzzing::ocapn_uri),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn replay(target: &str) {
    let (_, entry) = TARGETS.iter().find(|(t, _)| *t == target).unwrap();
    let files = corpus(target);
    assert!(
        files.len() >= 3,
        "fuzz/corpus/{target} has {} files; regenerate the seeds",
        files.len()
    );
    for (path, bytes) in files {
        // Named first: a stack overflow aborts the process before any assertion can.
        eprintln!("replaying {}", path.display());
        let outcome = std::panic::catch_unwind(|| entry(&bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn every_fuzz_target_has_a_corpus_and_a_target_file() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&targets)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.trim_end_matches(".rs").to_string()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "fuzz/fuzz_targets and TARGETS differ");
    for (t, _) in TARGETS {
        assert!(corpus_dir(t).is_dir(), "no corpus for {t}");
    }
}

#[test]
fn replay_log_store() {
    replay("log_store");
}

#[test]
fn replay_file_store() {
    replay("file_store");
}

#[test]
fn replay_sqlite_store() {
    replay("sqlite_store");
}

#[test]
fn replay_portrait() {
    replay("portrait");
}

#[test]
fn replay_by_name() {
    replay("by_name");
}

#[test]
fn replay_daemon_frame() {
    replay("daemon_frame");
}

#[test]
fn replay_config() {
    replay("config");
}

#[test]
fn replay_syrup() {
    replay("syrup");
}

#[test]
fn replay_captp_message() {
    replay("captp_message");
}

#[test]
fn replay_captp_session() {
    replay("captp_session");
}

#[test]
fn replay_ocapn_uri() {
    replay("ocapn_uri");
}

/// The seeds are what they claim: real stores load, real Syrup decodes, the session seeds
/// open a session with the fuzz target's keys. (A seed the code no longer accepts would
/// leave its target fuzzing only the first checks.)
#[test]
fn seeds_are_accepted_by_the_real_decoders() {
    use gobs_runtime::store::one_vat::read_lone_vat_file;
    use gobs_runtime::store::{LogOptions, LogStore};
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in corpus("log_store") {
        let stem = name.file_name().unwrap().to_string_lossy().into_owned();
        if !["seed-ghash-deltas", "seed-snapshot"].contains(&stem.as_str()) {
            continue;
        }
        let path = dir.path().join(&stem);
        std::fs::write(&path, &bytes).unwrap();
        let graph = LogStore::open(&path, LogOptions::default()).unwrap().load();
        assert!(graph.unwrap().is_some(), "{stem}");
    }
    for stem in ["seed-ghash", "seed-cell", "seed-account-v1"] {
        let path = dir.path().join(stem);
        std::fs::copy(corpus_dir("file_store").join(stem), &path).unwrap();
        let graph = read_lone_vat_file(&path);
        assert!(graph.unwrap().is_some(), "{stem}");
    }
    for (name, bytes) in corpus("syrup") {
        if name
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            gobs_ocapn::syrup::decode(&bytes).unwrap();
        }
    }
    let hello = std::fs::read(corpus_dir("captp_session").join("seed-hello")).unwrap();
    let mut session = gobs_ocapn::captp::Session::new(
        gobs_ocapn::captp::ConnId(1),
        Default::default(),
        gobs_ocapn::captp::KeyPair::from_seed(&gobs_ocapn::fuzzing::SESSION_SEED),
        &gobs_ocapn::fuzzing::session_locator(),
        gobs_ocapn::captp::LocalRef {
            id: gobs_ocapn::captp::ObjId(0),
            promise: false,
        },
    );
    session.receive(&hello[1..]);
    let event = session.poll_event();
    assert!(
        matches!(event, Some(gobs_ocapn::captp::Event::Opened { .. })),
        "{event:?}"
    );
}

/// Writes the seed corpus from the real code: stores written by the real stores, portraits
/// saved by real vats, real protocol frames, config files and CapTP sessions.
#[test]
#[ignore = "writes fuzz/corpus; run by hand when the formats change"]
fn write_seed_corpus() {
    seeds::write_all();
}

mod seeds {
    use std::path::Path;

    use gobs_runtime::actor_lib::{Cell, GHash};
    use gobs_runtime::store::{
        Durability, IntoStore, LogOptions, LogStore, MemoryStore, SqliteStore, Store,
    };
    use gobs_runtime::{PersistentVat, Registry, StoreKind, Value, common_env, spawn};

    use super::corpus_dir;

    fn put(target: &str, name: &str, bytes: &[u8]) {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }

    pub fn write_all() {
        stores();
        sqlite();
        portraits_and_calls();
        daemon();
        config();
        ocapn();
    }

    /// A GHash holding every kind of value, a reference to a Cell among them.
    fn rich_graph(store: impl IntoStore) -> gobs_runtime::Vat {
        let (vat, table) = PersistentVat::builder("seed")
            .env(common_env())
            .store(store)
            .spawn(|| spawn(GHash::new()))
            .unwrap();
        let cell = vat.run(|| spawn(Cell::new(Value::Int(5)))).unwrap();
        let mut inner = std::collections::BTreeMap::new();
        inner.insert("k".to_string(), Value::Int(9));
        let values = [
            ("cell", cell.into()),
            ("nil", Value::Nil),
            ("bool", Value::Bool(true)),
            ("int", Value::Int(-42)),
            ("float", Value::Float(1.5)),
            ("str", Value::from("héllo")),
            ("bytes", Value::Bytes(vec![0, 1, 255])),
            ("list", Value::List(vec![Value::Int(1), Value::from("two")])),
            ("map", Value::Map(inner)),
        ];
        for (k, v) in values {
            table.send().set(k.into(), v).wait().unwrap();
        }
        vat
    }

    fn stores() {
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
    fn sqlite() {
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

    fn portraits_and_calls() {
        let store = MemoryStore::new();
        let vat = rich_graph(store.clone());
        vat.shutdown();
        let graph = store.graph().unwrap();
        for (id, p) in &graph.actors {
            let kind = if p.name.ends_with("GHash") { 0u8 } else { 1 };
            let mut bytes = vec![kind, u8::try_from(p.version).unwrap()];
            bytes.extend_from_slice(&p.args);
            put("portrait", &format!("actor-{}", id.get()), &bytes);
        }
        let mut empty = vec![0u8, 0];
        let s = MemoryStore::new();
        let (vat, _) = PersistentVat::builder("seed")
            .env(common_env())
            .store(s.clone())
            .spawn(|| spawn(GHash::new()))
            .unwrap();
        vat.shutdown();
        empty.extend_from_slice(&s.graph().unwrap().actors.values().next().unwrap().args);
        put("portrait", "empty-ghash", &empty);
        // Calls by name: (actor, method index, MessagePack args), the args as a real
        // caller encodes them (a MessagePack array of the arguments).
        let h = MemoryStore::new();
        let (vat, hash) = PersistentVat::builder("seed")
            .env(common_env())
            .store(h)
            .spawn(|| spawn(GHash::new()))
            .unwrap();
        let cell = vat.run(|| spawn(Cell::new(Value::Int(5)))).unwrap();
        let index = |methods: &[gobs_runtime::MethodInfo], name: &str| {
            u8::try_from(methods.iter().position(|m| m.name == name).unwrap()).unwrap()
        };
        let call = |actor: u8, method: u8, args: Vec<u8>| {
            let mut bytes = vec![actor, method];
            bytes.extend(args);
            bytes
        };
        let hm = hash.methods();
        let cm = cell.methods();
        let args = |v: &dyn Fn() -> Vec<u8>| v();
        let seeds = [
            (
                "ghash-set",
                call(
                    0,
                    index(hm, "set"),
                    args(&|| {
                        rmp_serde::to_vec(&("k".to_string(), Value::List(vec![Value::Int(1)])))
                            .unwrap()
                    }),
                ),
            ),
            (
                "ghash-get",
                call(
                    0,
                    index(hm, "get"),
                    rmp_serde::to_vec(&("a".to_string(),)).unwrap(),
                ),
            ),
            (
                "ghash-remove",
                call(
                    0,
                    index(hm, "remove"),
                    rmp_serde::to_vec(&("b".to_string(),)).unwrap(),
                ),
            ),
            ("ghash-keys", call(0, index(hm, "keys"), vec![0x90])),
            (
                "cell-set",
                call(
                    1,
                    index(cm, "set"),
                    args(&|| {
                        let mut m = std::collections::BTreeMap::new();
                        m.insert("x".to_string(), Value::Bytes(vec![1, 2]));
                        rmp_serde::to_vec(&(Value::Map(m),)).unwrap()
                    }),
                ),
            ),
            ("cell-get", call(1, index(cm, "get"), vec![0x90])),
            (
                "cell-set-ref",
                call(1, index(cm, "set"), {
                    // A reference as a by-name caller sees one: the answer of a call
                    // that returns a reference is refused, so use a saved portrait's.
                    rmp_serde::to_vec(&(Value::Float(f64::NAN),)).unwrap()
                }),
            ),
        ];
        vat.shutdown();
        for (name, bytes) in seeds {
            put("by_name", name, &bytes);
        }
    }

    fn daemon() {
        use gobs_app::daemon::protocol::{
            MAX_REQUEST_BYTES, PROTOCOL_VERSION, RequestFrame, Response, write_frame,
        };
        use gobs_app::model::{BackendError, MachineInfo, MachineStatus, ProviderInfo};
        use gobs_app::ops::Request;
        let requests = [
            Request::CreateMachine {
                name: "web-1".parse().unwrap(),
                provider: Some("dummy".into()),
                host: None,
                progress: Default::default(),
            },
            Request::ListMachines {},
            Request::Machine {
                name: "a".parse().unwrap(),
            },
            Request::Run(gobs_app::ops::Run {
                name: "a".parse().unwrap(),
                command: vec!["printf".into(), "a\nb".into()],
                timeout: None,
                raw: false,
                stream: false,
                terminal: false,
                tty: None,
                io: None,
            }),
            Request::PutFile(gobs_app::ops::PutFile {
                name: "a".parse().unwrap(),
                path: "/etc/motd".into(),
                mode: Some(gobs_app::files::FileMode(0o644)),
                content: gobs_app::files::FileContent((0..=255u8).collect()),
                local: Default::default(),
            }),
            Request::GetFile(gobs_app::ops::GetFile {
                name: "a".parse().unwrap(),
                path: "/etc/hostname".into(),
                local: None,
            }),
            Request::DestroyMachine {
                name: "a".parse().unwrap(),
                progress: Default::default(),
            },
            Request::Providers {},
        ];
        let mut all = Vec::new();
        for request in requests {
            let op = request.op();
            let mut bytes = Vec::new();
            write_frame(
                &mut bytes,
                &RequestFrame {
                    version: PROTOCOL_VERSION,
                    request,
                },
                MAX_REQUEST_BYTES,
            )
            .unwrap();
            put("daemon_frame", &format!("request-{op}"), &bytes);
            all.extend_from_slice(&bytes);
        }
        put("daemon_frame", "requests-pipelined", &all);
        put(
            "daemon_frame",
            "wrong-version",
            b"{\"version\":\"2\",\"request\":{\"op\":\"providers\"}}\n",
        );
        put(
            "daemon_frame",
            "unknown-field",
            b"{\"version\":2,\"request\":{\"op\":\"list-machines\",\"x\":1},\"y\":0}\n",
        );
        let machine = MachineInfo {
            name: "web-1".into(),
            provider: "dummy".into(),
            status: MachineStatus::Running,
            created_at: 1_700_000_000,
            bindings: vec!["shell".into()],
            error: None,
            host: None,
        };
        let responses = [
            ("create", Response::CreateMachine(machine.clone())),
            ("list", Response::ListMachines(vec![machine])),
            (
                "providers",
                Response::Providers(vec![ProviderInfo {
                    name: "dummy".into(),
                    kind: "dummy".into(),
                    default: true,
                }]),
            ),
            (
                "put-file",
                Response::PutFile(gobs_app::files::FileCopied {
                    machine: "a".into(),
                    path: "/etc/motd".into(),
                    size: 256,
                    mode: gobs_app::files::FileMode(0o644),
                }),
            ),
            (
                "get-file",
                Response::GetFile(gobs_app::files::RemoteFile {
                    machine: "a".into(),
                    path: "/etc/hostname".into(),
                    content: gobs_app::files::FileContent(b"a\n".to_vec()),
                }),
            ),
            (
                "error",
                Response::Error(BackendError::storage("No space left on device")),
            ),
            (
                "protocol-error",
                Response::protocol_error("malformed request"),
            ),
        ];
        for (name, response) in responses {
            let mut bytes = Vec::new();
            write_frame(&mut bytes, &response, 1 << 20).unwrap();
            put("daemon_frame", &format!("response-{name}"), &bytes);
        }
    }

    fn config() {
        put(
            "config",
            "default",
            gobs_app::config::DEFAULT_CONFIG_TOML.as_bytes(),
        );
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../gobs-app/tests/fixtures/state-v1/config.toml");
        put("config", "state-v1", &std::fs::read(fixture).unwrap());
        put(
            "config",
            "providers",
            b"[store]\nkind = \"sqlite\"\ndurability = \"group\"\n\n[providers.dummy]\nkind = \"dummy\"\nenabled = true\n\n[providers.box]\nkind = \"local\"\nenabled = false\n",
        );
        put(
            "config",
            "not-utf8",
            b"[providers.dummy]\nkind = \"d\xffmmy\"\n",
        );
        put("config", "bad-key", "colour = \"blue\"\n# é\n".as_bytes());
    }

    fn ocapn() {
        use gobs_ocapn::captp::{
            ConnId, Event, KeyPair, LocalRef, ObjId, OutTarget, Session, SessionConfig, Term,
        };
        use gobs_ocapn::fuzzing::{PEER_SEED, SESSION_SEED, session_locator};
        use gobs_ocapn::locator::{PeerLocator, Sturdyref};
        use gobs_ocapn::syrup::{self, Value as S};

        // Locators and sturdyrefs as nodes print them.
        let peer = PeerLocator::new("tcp-testing-only", "abc")
            .with_hint("host", "127.0.0.1")
            .with_hint("port", "9000");
        let tls = PeerLocator::new("tcp-tls", "k7s2q4");
        let uris = [
            ("peer", peer.to_uri()),
            ("peer-tls", tls.to_uri()),
            (
                "sturdyref",
                Sturdyref {
                    peer: peer.clone(),
                    swiss: b"secret swiss".to_vec(),
                }
                .to_uri(),
            ),
            (
                "sturdyref-binary",
                Sturdyref {
                    peer: tls.clone(),
                    swiss: vec![0, 255, 7, 128],
                }
                .to_uri(),
            ),
            (
                "unix",
                PeerLocator::new("unix", "node")
                    .with_hint("path", "/run/x.sock")
                    .to_uri(),
            ),
        ];
        for (name, uri) in &uris {
            put("ocapn_uri", name, uri.as_bytes());
        }

        // Two sessions: the one under test (fixed keys, as the fuzz target makes it) and a
        // peer; everything the peer sends becomes a captp_session seed, each frame a
        // captp_message and syrup seed.
        let boot = LocalRef {
            id: ObjId(0),
            promise: false,
        };
        let mut ours = Session::new(
            ConnId(1),
            SessionConfig::default(),
            KeyPair::from_seed(&SESSION_SEED),
            &session_locator(),
            boot,
        );
        let mut peer_s = Session::new(
            ConnId(2),
            SessionConfig::default(),
            KeyPair::from_seed(&PEER_SEED),
            &PeerLocator::new("fuzz", "peer"),
            boot,
        );
        let mut sent = Vec::new();
        let pump = |ours: &mut Session, peer_s: &mut Session, sent: &mut Vec<u8>| {
            let mut peer_events = Vec::new();
            loop {
                let (a, b) = (ours.take_output(), peer_s.take_output());
                if a.is_empty() && b.is_empty() {
                    return peer_events;
                }
                sent.extend_from_slice(&b);
                ours.receive(&b);
                peer_s.receive(&a);
                while let Some(e) = ours.poll_event() {
                    if let Event::Deliver {
                        answer_pos: Some(p),
                        ..
                    } = e
                    {
                        ours.bind_answer(
                            p,
                            LocalRef {
                                id: ObjId(50),
                                promise: true,
                            },
                        );
                    }
                }
                while let Some(e) = peer_s.poll_event() {
                    peer_events.push(e);
                }
            }
        };
        pump(&mut ours, &mut peer_s, &mut sent);
        let hello = sent.clone();
        put("captp_session", "hello", &[&[255u8][..], &hello].concat());
        let no_tp = &mut |_: &gobs_ocapn::captp::RemoteRef| {
            Err(gobs_ocapn::captp::CaptpError::Protocol("none".into()))
        };
        let resolver = LocalRef {
            id: ObjId(3),
            promise: false,
        };
        peer_s
            .send_deliver(
                OutTarget::Export(0),
                &[Term::sym("fetch"), Term::str("x"), Term::Data(S::from(7))],
                true,
                Some(resolver),
                no_tp,
            )
            .unwrap();
        peer_s
            .send_deliver_only(
                OutTarget::Export(0),
                &[Term::sym("ping"), Term::Data(S::Bytes(vec![1, 2]))],
                no_tp,
            )
            .unwrap();
        peer_s
            .send_listen(
                OutTarget::Answer(0),
                LocalRef {
                    id: ObjId(4),
                    promise: false,
                },
                true,
            )
            .unwrap();
        peer_s.send_gc_answer(0).unwrap();
        pump(&mut ours, &mut peer_s, &mut sent);
        peer_s.abort("done");
        pump(&mut ours, &mut peer_s, &mut sent);
        for chunk in [255u8, 1, 7] {
            put(
                "captp_session",
                &format!("ops-chunk{chunk}"),
                &[&[chunk][..], &sent].concat(),
            );
        }
        put("captp_message", "session", &sent);
        let limits = SessionConfig::default().limits;
        let mut rest = &sent[..];
        let mut n = 0;
        while let Ok((frame, used)) = syrup::decode_prefix(rest, &limits) {
            let bytes = syrup::encode(&frame);
            put("captp_message", &format!("frame-{n}"), &bytes);
            put("syrup", &format!("frame-{n}"), &bytes);
            rest = &rest[used..];
            n += 1;
        }
        let values = [
            (
                "scalars",
                S::List(vec![S::Bool(true), S::from(-12), S::F64(1.5), S::F32(2.0)]),
            ),
            (
                "strings",
                S::List(vec![
                    S::from("héllo"),
                    S::symbol("sym"),
                    S::Bytes(vec![0, 255]),
                ]),
            ),
            ("locator", peer.to_value()),
            (
                "sturdyref",
                Sturdyref {
                    peer,
                    swiss: b"s".to_vec(),
                }
                .to_value(),
            ),
        ];
        for (name, v) in values {
            put("syrup", name, &syrup::encode(&v));
        }
        put("syrup", "dict", b"{1'a1+1'b2+}");
        put("syrup", "set", b"#1'a1'b$");
    }
}
