//! Seeds for the message targets: portraits and calls by name saved by real vats, the
//! daemon's frames, config files, and OCapN's Syrup, CapTP and URIs.

use super::*;

pub(super) fn portraits_and_calls() {
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
                    rmp_serde::to_vec(&("k".to_string(), Value::List(vec![Value::Int(1)]))).unwrap()
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

pub(super) fn daemon() {
    use gobs_app::daemon::protocol::{MAX_REQUEST_BYTES, RequestFrame, Response, write_frame};
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
            recursive: false,
            stream: false,
            io: None,
        }),
        Request::GetFile(gobs_app::ops::GetFile {
            name: "a".parse().unwrap(),
            path: "/etc/hostname".into(),
            local: None,
            recursive: false,
            stream: false,
            io: None,
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
        write_frame(&mut bytes, &RequestFrame::new(request), MAX_REQUEST_BYTES).unwrap();
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
                files: 1,
                sha256: None,
            }),
        ),
        (
            "get-file",
            Response::GetFile(gobs_app::files::RemoteFile {
                machine: "a".into(),
                path: "/etc/hostname".into(),
                content: gobs_app::files::FileContent(b"a\n".to_vec()),
                size: 2,
                files: 1,
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

pub(super) fn config() {
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

pub(super) fn ocapn() {
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
