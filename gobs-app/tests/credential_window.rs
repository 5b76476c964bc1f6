//! The attach credential's crash window, against the boss's gateway in this process and a
//! real `gobs-app hob-client` (no root needed): a client that crashed after the boss
//! answered an attach, before storing the next credential, gets in with the one it has;
//! one that stored it and crashed before confirming gets in with the new one, which
//! makes the one before stale; one that crashed before storing its registration's answer
//! registers again. The crashed client is played by a node of the test's own with the
//! machine's identity, which asks and then stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/boss_gateway.rs"]
mod boss_gateway;
mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/machine_node.rs"]
mod machine_node;

use std::path::Path;
use std::time::Duration;

use common::{HANG, wait_for};
use gobs_app::hob_net::client_state::{ClientState, ClientStore};
use gobs_app::hob_net::gateway::{Gateway, Reach};
use gobs_app::hob_net::wire;
use gobs_app::model::Cancel;
use gobs_app::providers::remote_machine::run_through;
use gobs_ocapn::captp::Term;
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::node::Cx;
use host::Client;
use machine_node::{MachineNode, identity_in, saved_state};

/// Kills the hob-client and waits until the gateway has seen m1's session end.
fn kill(client: Client, g: &Gateway) {
    drop(client);
    wait_for("m1 to be down", || {
        matches!(g.reach("m1"), Some(Reach::Down(_)))
    });
}

fn state(dir: &Path) -> ClientState {
    saved_state(dir).expect("the client stored its registration")
}

fn saved(dir: &Path) -> Vec<u8> {
    state(dir)
        .credential
        .expect("the client holds a credential")
}

/// Sends what `args` makes of a bindings object to the object `to` names, from a node
/// with the identity kept in `dir`, then stops without storing or confirming anything:
/// a client that crashed right after the answer. Answers the answer or the refusal.
fn send_and_crash(
    dir: &Path,
    to: Sturdyref,
    args: impl FnOnce(Term) -> Vec<Term> + Send + 'static,
) -> Result<Term, String> {
    let ok = |_: &mut Cx<'_>, _: Vec<Term>| Ok::<Term, Term>(Term::sym("ok"));
    let (crashed, answer) = MachineNode::send(identity_in(dir), to, ok, args);
    drop(crashed);
    answer.map_err(|e| wire::failure(&e))
}

/// Attaches as the machine whose client state is `dir` presenting `presented`, and
/// crashes (see [`send_and_crash`]); answers the next credential.
fn attach_and_crash(dir: &Path, presented: &[u8]) -> Result<Vec<u8>, String> {
    let boss = Sturdyref::parse(&state(dir).boss).unwrap();
    let presented = presented.to_vec();
    let answer = send_and_crash(dir, boss, move |b| wire::attach_args(b, Some(&presented)))?;
    let (_, next) = wire::parse_attached(&answer)?;
    Ok(next.expect("the boss answers the next credential"))
}

fn runs(g: &Gateway, machine: &str) -> bool {
    run_through(
        g,
        machine,
        &["true".into()],
        5,
        Duration::from_secs(5),
        &Cancel::new(),
    )
    .is_ok_and(|out| out.exit_code == Some(0))
}

#[test]
fn a_client_that_crashed_on_either_side_of_storing_the_next_credential_gets_in() {
    let (_boss, g) = boss_gateway::started();
    let uri = g.issue("m1", "127.0.0.1").unwrap().to_uri();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let client = Client::start_with(dir, Some(&uri));
    g.wait_up("m1", HANG, || None).unwrap();
    // Registered; the client writes its state once it has the answer, then attaches at
    // once, which rotates the credential. What it holds is read once it is killed: read
    // before, it may be the registration's, replaced by the time of the kill.
    wait_for("the client to store its state", || {
        saved_state(dir).is_some()
    });
    kill(client, &g);
    let first = saved(dir);

    // Answered, crashed before storing: the client still has `first`, and gets in with it.
    attach_and_crash(dir, &first).unwrap();
    let client = Client::start(dir);
    wait_for("m1 to run commands", || runs(&g, "m1"));
    wait_for("the client to store its next credential", || {
        saved(dir) != first
    });
    kill(client, &g);
    let second = saved(dir);

    // Answered and stored, crashed before confirming: the new one gets in, and the one
    // before is stale from then on.
    let third = attach_and_crash(dir, &second).unwrap();
    let store = ClientStore::open(dir).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(store.store_next(&third))
        .unwrap();
    store.close();
    let client = Client::start(dir);
    wait_for("m1 to run commands", || runs(&g, "m1"));
    wait_for("the client to store its next credential", || {
        saved(dir) != third
    });
    kill(client, &g);
    for stale in [&first, &second] {
        let err = attach_and_crash(dir, stale).unwrap_err();
        assert!(err.starts_with("credential conflict"), "{err}");
        assert!(err.contains("was replaced"), "{err}");
    }
    let shown = g.conflict("m1").unwrap();
    assert!(
        shown.contains("presented a credential that was replaced"),
        "{shown}"
    );
    assert!(shown.contains("2 refused attaches since"), "{shown}");
}

#[test]
fn a_client_that_crashed_before_storing_its_registration_registers_again() {
    let (_boss, g) = boss_gateway::started();
    let uri = g.issue("m2", "127.0.0.1").unwrap();
    let register = |b: Term| wire::call("register", vec![b]);

    // Registered from the machine's identity; the answer lost in a crash.
    let dir = tempfile::tempdir().unwrap();
    send_and_crash(dir.path(), uri.clone(), register).unwrap();
    // Another identity cannot use it again.
    let other = tempfile::tempdir().unwrap();
    let err = send_and_crash(other.path(), uri.clone(), register).unwrap_err();
    assert!(err.contains("already used"), "{err}");
    // The machine's own client can, and serves.
    let _client = Client::start_with(dir.path(), Some(&uri.to_uri()));
    wait_for("m2 to run commands", || runs(&g, "m2"));
    wait_for("m2's client to store its state", || {
        saved_state(dir.path()).is_some_and(|s| s.credential.is_some())
    });
}
