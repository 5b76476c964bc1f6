//! A copied attach credential, black-box through the built binary and its daemon, with
//! `host` machines (real hob-client processes, no root needed) and more hob-clients the
//! test starts on copies of a machine's state:
//!
//! - the credential copied into another hob-client (its own identity; written as an
//!   earlier release's `client.json`, which the copy moves into its registry): refused, shown on
//!   the machine (status, `list-machines`, events) with the time and the copy's proven
//!   location, never served; the machine's own client serves throughout.
//! - the whole state copied (identity and all), then the real client attaches again (a
//!   daemon restart): the copy's credential is stale and refused, and the real machine
//!   runs commands again once the copy is gone.
//! - state from before rotation (no credential in the client's `client.json` nor in the
//!   boss's table) attaches once without one, and that attach issues the first credential.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/machine_node.rs"]
mod machine_node;

use std::fs;
use std::path::Path;

use common::{Daemon, ok, wait_for};
use data_encoding::BASE64URL_NOPAD;
use gobs_app::actors::env::app_env;
use gobs_app::actors::vats::AppVats;
use gobs_app::hob_net::{client_state, credential};
use gobs_ocapn::locator::Sturdyref;
use gobs_runtime::{Registry, StoreKind};
use host::{Client, RealClient, location, served_by};
use machine_node::saved_state;

fn machine(s: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&ok(s, &["machine", name, "--json"])).unwrap()
}

fn saved_credential(client_dir: &Path) -> Option<Vec<u8>> {
    saved_state(client_dir).and_then(|s| s.credential)
}

/// Copies directory `from`, with its subdirectories, into a new directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A client state as an earlier release's `client.json` held it.
fn legacy_json(machine: &str, boss: &str, credential: Option<&[u8]>) -> serde_json::Value {
    let mut state = serde_json::json!({
        "machine": machine,
        "boss": boss,
        "bindings": ["run", "put-file", "get-file"],
    });
    if let Some(c) = credential {
        state["credential"] = credential::encode(c).into();
    }
    state
}

/// A daemon with a host machine `h1` created.
fn with_h1() -> (tempfile::TempDir, Daemon, RealClient) {
    host::with_machine(host::CONFIG, "h1", &[])
}

#[test]
fn a_copied_credential_is_reported_and_never_served() {
    let (dir, _daemon, real) = with_h1();
    let s = dir.path();
    let real_pid = real.pid().unwrap().as_raw_nonzero().get() as u32;
    assert_eq!(served_by(s, "h1"), Some(real_pid));

    // h1's credential in another machine's hob-client, which has an identity of its own.
    let copy = s.join("copy");
    fs::create_dir_all(&copy).unwrap();
    let h1 = saved_state(&s.join("hosts/h1/client")).unwrap();
    let stolen = legacy_json(&h1.machine, &h1.boss, h1.credential.as_deref());
    fs::write(copy.join("client.json"), stolen.to_string()).unwrap();
    let (code, err) = Client::start(&copy).exited();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("credential conflict"), "{err}");
    assert!(err.contains("not machine \"h1\"'s own"), "{err}");

    // Shown on the machine, with the copy's proven location; the real client serves on.
    let copy_at = location(&copy);
    let shown = machine(s, "h1");
    assert_eq!(shown["status"], "running");
    let error = shown["error"].as_str().unwrap();
    assert!(error.starts_with("credential conflict at "), "{error}");
    assert!(error.contains(&copy_at), "{error}");
    assert!(
        error.contains(&location(&s.join("hosts/h1/client"))),
        "{error}"
    );
    let listed = ok(s, &["list-machines"]);
    assert!(listed.contains(&copy_at), "{listed}");
    let events = ok(s, &["events", "--machine", "h1"]);
    assert!(
        events.contains(&format!("a hob-client at {copy_at}")),
        "{events}"
    );
    assert_eq!(served_by(s, "h1"), Some(real_pid));
}

#[test]
fn a_stale_copy_stops_working_once_the_real_client_attached_again() {
    let (dir, daemon, real) = with_h1();
    let s = dir.path();
    let client_dir = s.join("hosts/h1/client");
    let real_pid = real.pid().unwrap().as_raw_nonzero().get() as u32;

    // Everything copied: identity and credential.
    let clone = s.join("clone");
    copy_dir(&client_dir, &clone);
    let copied = saved_credential(&clone).expect("registration issued a credential");

    // The real client attaches again after a boss restart: its credential rotates.
    daemon.stop("TERM");
    let _daemon = Daemon::start(s);
    wait_for("h1's client to store a new credential", || {
        saved_credential(&client_dir).is_some_and(|c| c != copied)
    });
    assert_eq!(served_by(s, "h1"), Some(real_pid));
    let rotated = saved_credential(&client_dir).unwrap();

    // The clone proves h1's identity, but its credential was replaced.
    let (code, err) = Client::start(&clone).exited();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("credential conflict"), "{err}");
    assert!(err.contains("was replaced"), "{err}");
    let error = machine(s, "h1")["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("presented a credential that was replaced"),
        "{error}"
    );

    // The clone took h1's session over the network while it lived; with it gone, the real
    // client serves again (it attaches by itself, rotating once more).
    wait_for("the real client to serve h1 again", || {
        served_by(s, "h1") == Some(real_pid)
    });
    wait_for("another rotation", || {
        saved_credential(&client_dir).is_some_and(|c| c != rotated)
    });
}

#[test]
fn state_from_before_rotation_attaches_and_is_issued_its_first_credential() {
    let (dir, daemon, real) = with_h1();
    let s = dir.path();
    let client_dir = s.join("hosts/h1/client");
    daemon.stop("TERM");
    real.kill();

    // Rewrite both sides as the release before rotation wrote them: the client's state
    // without a credential, and the boss's table in `hob/gateway.json` (that release's
    // place for it), its entry without one, instead of in the registry.
    // The client keeps its identity; its record goes back to a `client.json`.
    let h1 = saved_state(&client_dir).unwrap();
    let old_client = legacy_json(&h1.machine, &h1.boss, None);
    let registry = Registry::open(
        client_dir.join(client_state::VATS_DIR),
        client_state::env().unwrap(),
        StoreKind::Log(Default::default()),
    )
    .unwrap();
    registry
        .destroy_vat(client_state::CLIENT_VAT)
        .wait()
        .unwrap();
    registry.shutdown();
    drop(registry);
    fs::write(client_dir.join("client.json"), old_client.to_string()).unwrap();
    let attach = Sturdyref::parse(&h1.boss).unwrap();
    let table = serde_json::json!({
        "port": attach.peer.hint("port").unwrap().parse::<u16>().unwrap(),
        "machines": {"h1": {
            "registration": BASE64URL_NOPAD.encode(b"spent long ago"),
            "attach": BASE64URL_NOPAD.encode(&attach.swiss),
            "state": "used",
        }},
        "spent": [],
    });
    fs::create_dir_all(s.join("hob")).unwrap();
    fs::write(s.join("hob/gateway.json"), table.to_string()).unwrap();
    let vats = AppVats::open(s, app_env().unwrap(), StoreKind::Log(Default::default())).unwrap();
    vats.registry()
        .destroy_vat("hob-registrations")
        .wait()
        .unwrap();
    vats.shutdown();
    drop(vats);
    let old = s.join("old");
    copy_dir(&client_dir, &old);

    // The upgraded boss, and the machine's hob-client started again on its old state.
    let _daemon = Daemon::start(s);
    let upgraded = Client::start(&client_dir);
    wait_for("h1 to run commands again", || {
        served_by(s, "h1") == Some(upgraded.pid())
    });
    wait_for("the first credential to be stored", || {
        saved_credential(&client_dir).is_some()
    });

    // The old state, copied before the first rotation, is stale now.
    let (code, err) = Client::start(&old).exited();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("was replaced"), "{err}");
    wait_for("the upgraded client to serve h1 again", || {
        served_by(s, "h1") == Some(upgraded.pid())
    });
}
