#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;

use gobs_ocapn::persist::NodeState;
use gobs_runtime::StoreKind;

use super::*;
use crate::actors::env::app_env;
use crate::actors::vats::AppVats;
use crate::hob_net::gateway::Reach;
use crate::hob_net::table::{Entry, RegState, Table, table_path};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The vats of a boss whose state directory is `dir`.
fn vats(dir: &Path) -> AppVats {
    AppVats::open(dir, app_env().unwrap(), StoreKind::Log(Default::default())).unwrap()
}

fn boss(vats: &AppVats) -> BossGateway {
    BossGateway::new(
        vats.registry().clone(),
        vats.dir().join(HOB_DIR),
        false,
        None,
    )
}

/// The gateway's table as its registry holds it.
fn table(gateway: &BossGateway) -> Table {
    gateway
        .table()
        .unwrap()
        .send_with(|t| t.table())
        .wait()
        .unwrap()
        .unwrap()
}

#[test]
fn two_bosses_in_one_process_have_a_gateway_each() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (v1, v2) = (vats(d1.path()), vats(d2.path()));
    let (b1, b2) = (boss(&v1), boss(&v2));
    assert!(
        b1.running().is_none(),
        "nothing starts it before it is needed"
    );
    let g1 = b1.start(loopback()).unwrap();
    let g2 = b2.start(loopback()).unwrap();
    assert_ne!(g1.port(), g2.port());
    g1.issue("m1", "127.0.0.1").unwrap();
    assert_eq!(g1.reach("m1"), Some(Reach::Waiting));
    assert_eq!(g2.reach("m1"), None, "the other boss knows nothing of m1");
    assert_eq!(b1.running().unwrap().port(), g1.port());
    assert!(table(&b2).machines.is_empty());
}

#[test]
fn revoking_before_the_gateway_started_changes_its_table_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = vats(dir.path());
    let before = boss(&first);
    let g = before.start(loopback()).unwrap();
    g.issue("m1", "127.0.0.1").unwrap();
    drop(g);
    before.stop();
    first.shutdown();
    // The boss restarted; its gateway has not been needed yet.
    let again = vats(dir.path());
    let after = boss(&again);
    after.revoke("m1").unwrap();
    assert!(after.running().is_none());
    let t = table(&after);
    assert!(t.machines.is_empty());
    assert_eq!(t.spent.len(), 1);
    assert_eq!(t.spent[0].machine, "m1");
    assert_eq!(t.spent[0].state, RegState::Revoked);
    // Revoking what it does not know (or knows no more) is nothing to do.
    after.revoke("m1").unwrap();
    assert_eq!(table(&after).spent.len(), 1);
    // No side file: the table is the registry's.
    assert!(!table_path(&dir.path().join(HOB_DIR)).exists());
}

#[test]
fn a_stopped_gateway_frees_its_port_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = vats(dir.path());
    let before = boss(&first);
    let port = before.start(loopback()).unwrap().port();
    before.stop();
    first.shutdown();
    // The boss opened again in the same process: the kept port is free already.
    let again = vats(dir.path());
    assert_eq!(boss(&again).start(loopback()).unwrap().port(), port);
}

#[test]
fn a_stopped_gateway_does_not_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let v = vats(dir.path());
    let b = boss(&v);
    b.start(loopback()).unwrap();
    b.stop();
    assert!(b.running().is_none());
    let e = b.start(loopback()).unwrap_err();
    assert!(e.contains("shutting down"), "{e}");
}

#[test]
fn a_read_only_boss_never_starts_its_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let v = vats(dir.path());
    let b = BossGateway::new(v.registry().clone(), dir.path().join(HOB_DIR), true, None);
    assert!(!b.may_start());
    let e = b.start(loopback()).unwrap_err();
    assert!(e.contains("only reads"), "{e}");
    assert!(b.running().is_none());
}

#[test]
fn an_earlier_releases_table_and_identity_move_into_the_registry_once() {
    let dir = tempfile::tempdir().unwrap();
    let hob = dir.path().join(HOB_DIR);
    std::fs::create_dir_all(&hob).unwrap();
    // What an earlier release left: its node identity and its table, with its port.
    let designator = NodeState::open(&hob.join("node")).unwrap().tls.designator();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let old = Table {
        port,
        machines: [(
            "h1".to_string(),
            Entry {
                registration: "cmVn".into(),
                attach: "YXR0YWNo".into(),
                state: RegState::Used,
                credential: Default::default(),
            },
        )]
        .into(),
        spent: Vec::new(),
    };
    std::fs::write(table_path(&hob), serde_json::to_vec(&old).unwrap()).unwrap();

    let v = vats(dir.path());
    let b = boss(&v);
    let g = b.start(loopback()).unwrap();
    assert_eq!(g.port(), port, "the port its machines' sturdyrefs name");
    assert!(
        g.issue("m2", "127.0.0.1")
            .unwrap()
            .to_uri()
            .contains(&designator),
        "the identity its machines' sturdyrefs name"
    );
    assert!(matches!(g.reach("h1"), Some(Reach::Down(_))));
    assert_eq!(table(&b).machines["h1"].attach, "YXR0YWNo");
    assert!(!table_path(&hob).exists());
    assert!(hob.join("gateway.json.migrated").exists());
    assert!(hob.join("node.migrated").exists());
}
