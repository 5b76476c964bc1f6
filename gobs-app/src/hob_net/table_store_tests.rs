#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_ocapn::locator::PeerLocator;
use gobs_runtime::StoreKind;

use super::*;
use crate::actors::env::app_env;
use crate::actors::vats::AppVats;
use crate::hob_net::table::Spent;

fn home() -> PeerLocator {
    PeerLocator::new("tcp-tls", "h1designator")
}

/// What the earlier release's table held: h1 registered (with its credential), m2 not
/// yet, and one spent registration.
fn earlier_rows() -> (Entry, Entry, Spent) {
    let (keeper, _) = Keeper::registered(&home()).unwrap();
    let h1 = Entry {
        registration: "cmVnMQ".into(),
        attach: "YXR0MQ".into(),
        state: RegState::Used,
        credential: keeper,
    };
    let m2 = Entry {
        registration: "cmVnMg".into(),
        attach: "YXR0Mg".into(),
        state: RegState::Open,
        credential: Keeper::default(),
    };
    let gone = Spent {
        registration: "Z29uZQ".into(),
        machine: "gone".into(),
        state: RegState::Revoked,
    };
    (h1, m2, gone)
}

fn open(dir: &std::path::Path) -> AppVats {
    AppVats::open(dir, app_env().unwrap(), StoreKind::Log(Default::default())).unwrap()
}

#[test]
fn the_rows_the_release_before_kept_in_the_registry_become_actors_and_stay_so() {
    let dir = tempfile::tempdir().unwrap();
    let (h1, m2, gone) = earlier_rows();
    {
        // What the release before left: its rows in vat `hob-gateway`.
        let vats = open(dir.path());
        let rows = Table {
            port: 4242,
            machines: [
                ("h1".to_string(), h1.clone()),
                ("m2".to_string(), m2.clone()),
            ]
            .into(),
            spent: vec![gone.clone()],
        };
        vats.registry()
            .start_vat(EARLIER_VAT, move || spawn(EarlierTable::from_rows(rows)))
            .unwrap();
        vats.registry().shutdown();
    }
    let hob = dir.path().join("hob");
    for _ in 0..2 {
        let vats = open(dir.path());
        let table = open_table(vats.registry(), &hob, false).unwrap();
        let rows = table.send_with(|t| t.table()).wait().unwrap().unwrap();
        assert_eq!(rows.port, 4242);
        assert_eq!(rows.machines["h1"].attach, h1.attach);
        assert_eq!(rows.machines["h1"].state, RegState::Used);
        assert!(rows.machines["h1"].credential.is_home(&home()));
        assert_eq!(rows.machines["m2"].registration, m2.registration);
        assert_eq!(rows.machines["m2"].state, RegState::Open);
        assert_eq!(rows.spent.len(), 1);
        assert_eq!(rows.spent[0].registration, gone.registration);
        assert_eq!(rows.spent[0].state, RegState::Revoked);
        // Actors now: one registration per machine and per spent one, h1's and m2's with
        // their attach objects.
        let bound = table.send_with(|t| t.bound()).wait().unwrap().unwrap();
        let attached: Vec<_> = bound
            .iter()
            .filter(|b| b.attach.is_some())
            .map(|b| b.machine.as_str())
            .collect();
        assert_eq!(bound.len(), 3);
        assert_eq!(attached, ["h1", "m2"]);
        assert!(
            !vats.registry().vat_names().iter().any(|n| n == EARLIER_VAT),
            "the earlier release's vat is gone once its rows are actors"
        );
        vats.registry().shutdown();
    }
}

#[test]
fn a_revoked_machines_attach_actor_refuses_and_its_registration_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let vats = open(dir.path());
    let table = open_table(vats.registry(), &dir.path().join("hob"), false).unwrap();
    let (issued, before) = table
        .send_mut_with(|t| t.issue("m", "cmVn".into(), "YXR0".into()))
        .wait()
        .unwrap()
        .unwrap();
    assert!(before.is_none());
    let (attach, swiss) = issued.attach.clone().unwrap();
    assert_eq!(swiss, "YXR0");
    let (attach_swiss, credential) = issued
        .registration
        .send_mut_with(|r| r.admit(&home()))
        .wait()
        .unwrap()
        .unwrap();
    assert!(!credential.is_empty());
    assert_eq!(data_encoding::BASE64URL_NOPAD.encode(&attach_swiss), "YXR0");
    // Registered: the attach actor judges by its keeper.
    let ok = attach
        .send_with(|a| a.still_registered().map(|()| a.keeper().is_home(&home())))
        .wait()
        .unwrap()
        .unwrap();
    assert!(ok);
    // A second registration from elsewhere is refused as used.
    let elsewhere = PeerLocator::new("tcp-tls", "other");
    let again = issued
        .registration
        .send_mut_with(move |r| r.admit(&elsewhere))
        .wait()
        .unwrap()
        .unwrap_err();
    assert!(again.contains("already used"), "{again}");

    let revoked = table
        .send_mut_with(|t| t.revoke("m"))
        .wait()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(revoked.state, RegState::Used);
    assert!(revoked.attach.is_none());
    let refused = attach
        .send_with(|a| a.still_registered())
        .wait()
        .unwrap()
        .unwrap_err();
    assert!(refused.starts_with(crate::hob_net::gateway::DESTROYED));
    let rows = table.send_with(|t| t.table()).wait().unwrap().unwrap();
    assert!(rows.machines.is_empty());
    assert_eq!(rows.spent[0].machine, "m");
}

#[test]
fn a_registration_admitted_stays_registered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let vats = open(dir.path());
        let table = open_table(vats.registry(), &dir.path().join("hob"), false).unwrap();
        let (issued, _) = table
            .send_mut_with(|t| t.issue("m", "cmVn".into(), "YXR0".into()))
            .wait()
            .unwrap()
            .unwrap();
        issued
            .registration
            .send_mut_with(|r| r.admit(&home()))
            .wait()
            .unwrap()
            .unwrap();
        vats.shutdown();
    }
    let vats = open(dir.path());
    let table = open_table(vats.registry(), &dir.path().join("hob"), false).unwrap();
    let bound = table.send_with(|t| t.bound()).wait().unwrap().unwrap();
    let (attach, _) = bound[0].attach.clone().unwrap();
    let home_kept = attach
        .send_with(|a| a.still_registered().map(|()| a.keeper().is_home(&home())))
        .wait()
        .unwrap()
        .unwrap();
    assert!(home_kept);
    assert_eq!(bound[0].state, RegState::Used);
}
