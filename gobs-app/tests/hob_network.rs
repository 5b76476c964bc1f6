//! hob over OCapN without containers (no root needed): the boss's gateway in this process,
//! `gobs-app hob-client` processes on loopback. A hob-client registers once through its
//! one-time sturdyref and serves its bindings; a replayed or revoked registration is refused
//! over the network with the reason; the boss's objects answer nothing but their own
//! messages; a restarted hob-client attaches again from its state; a destroyed machine's
//! hob-client is told so and stops; a restarted boss's sturdyrefs reach the same
//! registrations and attach objects (its actors, restored).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/boss_gateway.rs"]
mod boss_gateway;
mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/machine_node.rs"]
mod machine_node;

use std::time::Duration;

use common::{HANG, bare, text, wait_for};
use gobs_app::actors::env::app_env;
use gobs_app::actors::vats::AppVats;
use gobs_app::hob_net::boss_gateway::{BossGateway, HOB_DIR};
use gobs_app::hob_net::gateway::{Gateway, Reach};
use gobs_app::hob_net::wire;
use gobs_app::model::Cancel;
use gobs_app::providers::remote_machine::run_through;
use gobs_ocapn::captp::Term;
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::TlsIdentity;
use gobs_ocapn::node::Cx;
use gobs_ocapn::syrup::Value;
use gobs_runtime::StoreKind;
use host::Client;
use machine_node::MachineNode;

fn refused(dir: &std::path::Path, uri: &str) -> String {
    let out = bare()
        .args(["hob-client", "--dir"])
        .arg(dir)
        .args(["--registration", uri])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    text(&out.stderr)
}

fn ask(g: &Gateway, machine: &str, args: Vec<Term>) -> Result<Term, String> {
    Gateway::wait(
        g.ask(machine, args, Duration::from_secs(10)),
        Duration::from_secs(20),
    )
}

/// Sends `args` to the object `uri` names, from a node of our own.
fn poke(uri: &str, args: Vec<Term>) -> Result<Term, String> {
    let nothing = |_: &mut Cx<'_>, _: Vec<Term>| Err::<Term, Term>(Term::str("nothing here"));
    let identity = TlsIdentity::generate().unwrap();
    let (_node, answer) =
        MachineNode::send(identity, Sturdyref::parse(uri).unwrap(), nothing, |_| args);
    answer.map_err(|e| wire::failure(&e))
}

#[test]
fn hob_clients_register_once_serve_their_bindings_and_come_back() {
    let (_boss, g) = boss_gateway::started();

    // Registration, and the bindings.
    let uri = g.issue("m1", "127.0.0.1").unwrap().to_uri();
    let client_dir = tempfile::tempdir().unwrap();
    let mut client = Client::start_with(client_dir.path(), Some(&uri));
    g.wait_up("m1", HANG, || None).unwrap();
    assert!(matches!(g.reach("m1"), Some(Reach::Up(_))));
    let sessions = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(g.sessions());
    assert_eq!(sessions, 1, "m1's hob-client is the only peer");
    assert_eq!(
        wire::as_string(&ask(&g, "m1", wire::call("status", vec![])).unwrap()).unwrap(),
        "running"
    );
    let out = run_through(
        &g,
        "m1",
        &[
            "sh".into(),
            "-c".into(),
            "echo out; echo err >&2; exit 3".into(),
        ],
        10,
        Duration::from_secs(5),
        &Cancel::new(),
    )
    .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (Some(3), "out\n", "err\n")
    );
    let big = run_through(
        &g,
        "m1",
        &["sh".into(), "-c".into(), "head -c 300000 /dev/zero".into()],
        10,
        Duration::from_secs(5),
        &Cancel::new(),
    )
    .unwrap();
    assert!(big.truncated);
    assert_eq!(big.stdout.len(), wire::MAX_REMOTE_OUTPUT);
    assert!(big.stderr.contains("cut at 262144 bytes"), "{}", big.stderr);
    let file = client_dir.path().join("put.txt");
    let path = file.display().to_string();
    ask(
        &g,
        "m1",
        wire::call(
            "put-file",
            vec![
                wire::text(&path),
                Term::Data(Value::Bytes(b"hello".to_vec())),
                Term::Data(Value::from(0o600i64)),
            ],
        ),
    )
    .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"hello");
    let got = ask(&g, "m1", wire::call("get-file", vec![wire::text(&path)])).unwrap();
    assert_eq!(got.to_value().unwrap().as_bytes().unwrap(), b"hello");
    let too_big = client_dir.path().join("big");
    std::fs::write(&too_big, vec![0u8; wire::MAX_FILE + 1]).unwrap();
    let err = ask(
        &g,
        "m1",
        wire::call("get-file", vec![wire::text(&too_big.display().to_string())]),
    )
    .unwrap_err();
    assert!(err.contains("at most 524288 bytes"), "{err}");
    let err = ask(&g, "m1", wire::call("reboot", vec![])).unwrap_err();
    assert!(err.contains("no binding `reboot`"), "{err}");

    // A replayed registration sturdyref is refused over the network, saying why.
    let err = refused(tempfile::tempdir().unwrap().path(), &uri);
    assert!(err.contains("registration refused"), "{err}");
    assert!(err.contains("already used"), "{err}");

    // A revoked one (a failed creation, a destroyed machine) likewise.
    let revoked = g.issue("m2", "127.0.0.1").unwrap().to_uri();
    g.revoke("m2").unwrap();
    let err = refused(tempfile::tempdir().unwrap().path(), &revoked);
    assert!(err.contains("was revoked"), "{err}");

    // The boss's objects answer only their own messages: a machine holding its
    // registration cannot reach anything else of the boss through it.
    let open = g.issue("m3", "127.0.0.1").unwrap().to_uri();
    for method in [
        "create-machine",
        "list-machines",
        "attach",
        "destroy-machine",
    ] {
        let err = poke(&open, wire::call(method, vec![])).unwrap_err();
        assert_eq!(err, format!("no method `{method}`"), "{method}");
    }
    let err = poke(
        &open,
        wire::call("register", vec![wire::text("not a reference")]),
    )
    .unwrap_err();
    assert!(
        err.contains("bad arguments for `register(caller: Caller, bindings: RemoteObject)`"),
        "{err}"
    );
    g.revoke("m3").unwrap();

    // A killed hob-client: unreachable, then back from its saved state, no sturdyref needed.
    client.child.kill().unwrap();
    client.child.wait().unwrap();
    wait_for("m1 to be down", || {
        matches!(g.reach("m1"), Some(Reach::Down(_)))
    });
    let err = run_through(
        &g,
        "m1",
        &["true".into()],
        5,
        Duration::ZERO,
        &Cancel::new(),
    )
    .unwrap_err();
    assert!(err.contains("unreachable"), "{err}");
    let again = Client::start(client_dir.path());
    g.wait_up("m1", HANG, || None).unwrap();
    assert_eq!(
        run_through(
            &g,
            "m1",
            &["echo".into(), "back".into()],
            5,
            Duration::from_secs(5),
            &Cancel::new(),
        )
        .unwrap()
        .stdout,
        "back\n"
    );

    // Destroyed: the hob-client is told so and stops.
    g.revoke("m1").unwrap();
    // The hob-client ends by itself.
    let (code, err) = again.exited();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("destroyed"), "{err}");
}

/// A boss on state directory `dir` (made, or restored), its gateway started on loopback.
fn boss_on(dir: &std::path::Path) -> (AppVats, BossGateway, Gateway) {
    let vats = AppVats::open(dir, app_env().unwrap(), StoreKind::Log(Default::default())).unwrap();
    let gateway = BossGateway::new(vats.registry().clone(), dir.join(HOB_DIR), false, None);
    let g = gateway.start("127.0.0.1:0".parse().unwrap()).unwrap();
    (vats, gateway, g)
}

#[test]
fn a_restarted_boss_keeps_each_registration_and_attach_as_it_was() {
    let state = tempfile::tempdir().unwrap();
    let (vats, gateway, g) = boss_on(state.path());
    let used = g.issue("m1", "127.0.0.1").unwrap().to_uri();
    let client_dir = tempfile::tempdir().unwrap();
    let mut client = Client::start_with(client_dir.path(), Some(&used));
    g.wait_up("m1", HANG, || None).unwrap();
    let revoked = g.issue("m2", "127.0.0.1").unwrap().to_uri();
    g.revoke("m2").unwrap();
    let open = g.issue("m3", "127.0.0.1").unwrap().to_uri();
    drop(g);
    gateway.stop();
    vats.shutdown();
    drop(vats);

    // m1's hob-client, still running, attaches again through the attach object it was
    // given before.
    let (_vats, _gateway, g) = boss_on(state.path());
    let err = refused(tempfile::tempdir().unwrap().path(), &used);
    assert!(err.contains("already used"), "{err}");
    let err = refused(tempfile::tempdir().unwrap().path(), &revoked);
    assert!(err.contains("was revoked"), "{err}");
    g.wait_up("m1", HANG, || {
        client
            .child
            .try_wait()
            .unwrap()
            .map(|s| format!("m1's hob-client ended: {s}"))
    })
    .unwrap();
    let ran = run_through(
        &g,
        "m1",
        &["echo".into(), "restarted".into()],
        5,
        Duration::from_secs(5),
        &Cancel::new(),
    )
    .unwrap();
    assert_eq!(ran.stdout, "restarted\n");
    // m3's registration, issued before the restart, still registers its machine.
    let m3_dir = tempfile::tempdir().unwrap();
    let m3 = Client::start_with(m3_dir.path(), Some(&open));
    g.wait_up("m3", HANG, || None).unwrap();
    for (machine, client) in [("m1", client), ("m3", m3)] {
        g.revoke(machine).unwrap();
        let (code, err) = client.exited();
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("destroyed"), "{err}");
    }
}
