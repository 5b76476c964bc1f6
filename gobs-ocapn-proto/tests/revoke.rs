//! Revoking swiss numbers (`Core::revoke_swiss`), checked at the wire with a raw peer on
//! the pair harness and on the core alone: a revoked swiss number, bound by the
//! host or minted for a peer, is refused with an error that says it was revoked, while
//! never-known ones keep their own error; the node's other swiss numbers are untouched;
//! references fetched before stay live, and the object goes once they are released.
//! (That a revocation survives a restart is in `node_store.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn_proto::captp::{CapRef, SessionConfig, Term};
use gobs_ocapn_proto::fixtures::{ECHO_GC, GREETER};
use gobs_ocapn_proto::locator::{PeerLocator, Sturdyref};
use gobs_ocapn_proto::node::{Core, Cx, REVOKED_KEPT};
use gobs_ocapn_proto::syrup::Value;

const NAMED: &[u8] = b"a-named-export-swiss-number-0001";
const NEVER: &[u8] = b"a-swiss-number-never-bound-0002";

fn echo(core: &mut Core) -> gobs_ocapn_proto::captp::LocalRef {
    core.spawn(Box::new(|_: &mut Cx<'_>, args: Vec<Term>| {
        Ok(Term::List(args))
    }))
}

/// A fixture node with one more echo bound at [`NAMED`].
fn node_with_named() -> (Net, SimNode) {
    let (net, node) = start();
    node.with_core(|c| {
        let obj = echo(c);
        c.bind_swiss(NAMED, obj);
    });
    (net, node)
}

/// Revokes `swiss` once everything in flight has arrived.
fn revoke(net: &Net, node: &SimNode, swiss: &[u8]) -> bool {
    net.drive();
    node.with_core(|c| c.revoke_swiss(swiss))
}

/// Fetches `swiss` and expects the fetch to break; returns the error's text.
fn fetch_refused(p: &mut Peer, swiss: &[u8]) -> String {
    let r = p.deliver(
        export(0),
        vec![sym("fetch"), Value::Bytes(swiss.to_vec())],
        None,
    );
    let res = p.resolution(r);
    assert_eq!(res[0], sym("break"), "the fetch was answered: {res:?}");
    res[1]
        .as_str()
        .unwrap_or_else(|| panic!("the error is not a string: {:?}", res[1]))
        .to_owned()
}

fn call_echo(p: &mut Peer, to: Value, what: &str) -> Vec<Value> {
    let r = p.deliver(to, vec![Value::from(what)], None);
    p.resolution(r)
}

#[test]
fn a_revoked_named_swiss_number_is_refused_as_revoked() {
    let (net, node) = node_with_named();
    let mut p = net.connect(&node, my_location("revoke-named", 1));
    p.setup();
    let before = p.fetch(NAMED);
    assert_eq!(call_echo(&mut p, before.clone(), "hi")[0], sym("fulfill"));

    assert!(revoke(&net, &node, NAMED), "it named an object");
    let why = fetch_refused(&mut p, NAMED);
    assert!(why.contains("revoked"), "{why}");
    assert!(why.contains("ask whoever gave it to you"), "{why}");

    // A swiss number the node never knew keeps the error it always had.
    let why = fetch_refused(&mut p, NEVER);
    assert_eq!(why, "no object has that swiss number on this node");
    assert!(!why.contains("revoked"));

    // Revoking again, or revoking one never bound, finds nothing.
    assert!(!revoke(&net, &node, NAMED));
    assert!(!revoke(&net, &node, NEVER));
    assert!(!revoke(&net, &node, b""));

    // The node's other swiss numbers are untouched.
    let other = p.fetch(ECHO_GC);
    assert_eq!(call_echo(&mut p, other, "still")[0], sym("fulfill"));
    p.fetch(GREETER);
}

#[test]
fn a_fresh_session_is_refused_too_and_a_rebound_swiss_number_works_again() {
    let (net, node) = node_with_named();
    assert!(revoke(&net, &node, NAMED));
    let mut p = net.connect(&node, my_location("revoke-fresh", 2));
    p.setup();
    assert!(fetch_refused(&mut p, NAMED).contains("revoked"));

    // The host may bind the same swiss number again: then it is no longer revoked.
    node.with_core(|c| {
        let obj = echo(c);
        c.bind_swiss(NAMED, obj);
        assert!(!c.is_revoked(NAMED));
    });
    let again = p.fetch(NAMED);
    assert_eq!(call_echo(&mut p, again, "back")[0], sym("fulfill"));
}

#[test]
fn a_reference_fetched_before_stays_live_and_the_object_goes_once_released() {
    let (net, node) = node_with_named();
    let mut p = net.connect(&node, my_location("revoke-live", 3));
    p.setup();
    let live = p.fetch(NAMED);
    net.drive();
    let with_object = node.objects();
    assert!(revoke(&net, &node, NAMED));

    // CapTP cannot take a live reference back: the peer's import still works.
    let res = call_echo(&mut p, live.clone(), "after");
    assert_eq!(res[0], sym("fulfill"), "{res:?}");
    assert_eq!(res[1], Value::List(vec![Value::from("after")]));

    // Once the peer lets go, nothing keeps the object: it is collected.
    let Some(("desc:export", [pos])) = live.as_record() else {
        panic!("{live:?}")
    };
    let pos = pos.as_int().unwrap() as u64;
    p.send(&rec(
        "op:gc-export",
        vec![Value::List(vec![int(pos)]), Value::List(vec![int(1)])],
    ));
    net.drive();
    assert_eq!(
        node.objects(),
        with_object - 1,
        "the revoked object was not collected"
    );
}

/// Asks the node's bootstrap for a sturdyref to the export at `pos` (`gobs:sturdyref`).
fn mint(p: &mut Peer, pos: Value) -> Sturdyref {
    let r = p.deliver(export(0), vec![sym("gobs:sturdyref"), pos], None);
    let res = p.resolution(r);
    assert_eq!(res[0], sym("fulfill"), "no sturdyref minted: {res:?}");
    Sturdyref::parse(res[1].as_str().unwrap()).unwrap()
}

#[test]
fn a_revoked_minted_swiss_number_no_longer_enlivens() {
    let (net, node) = node_with_named();
    let mut p = net.connect(&node, my_location("revoke-minted", 4));
    p.setup();
    let named = p.fetch(NAMED);
    let greeter = p.fetch(GREETER);
    let minted = mint(&mut p, named.clone());
    let other = mint(&mut p, greeter);
    assert_eq!(
        mint(&mut p, named.clone()).swiss,
        minted.swiss,
        "one per object"
    );
    p.fetch(&minted.swiss);

    assert!(revoke(&net, &node, &minted.swiss));
    let why = fetch_refused(&mut p, &minted.swiss);
    assert!(why.contains("revoked"), "{why}");

    // Enlivening it on the node itself (the way the sturdyref enlivener fixture and
    // `Core::enliven` do for a local sturdyref) is refused the same way.
    let enlivened = node.enliven(&minted);
    let outcome = node.settled(enlivened);
    let Some(Err(Term::Data(Value::String(why)))) = outcome else {
        panic!("enlivened a revoked sturdyref: {outcome:?}")
    };
    assert!(why.contains("revoked"), "{why}");

    // The object's other swiss number and the node's other minted one still work.
    p.fetch(NAMED);
    p.fetch(&other.swiss);
    // A holder of a live reference may ask again: it gets a new swiss number.
    let fresh = mint(&mut p, named);
    assert_ne!(fresh.swiss, minted.swiss);
    let obj = p.fetch(&fresh.swiss);
    assert_eq!(call_echo(&mut p, obj, "fresh")[0], sym("fulfill"));
}

fn core() -> Core {
    Core::new(PeerLocator::new("test", "me"), SessionConfig::default())
}

#[test]
fn a_revoked_object_no_session_holds_goes_at_once_unless_kept_otherwise() {
    let mut core = core();
    let lone = echo(&mut core);
    core.bind_swiss(b"lone", lone);
    let twice = echo(&mut core);
    core.bind_swiss(b"twice-1", twice);
    core.bind_swiss(b"twice-2", twice);
    let pinned = echo(&mut core);
    core.pin(pinned);
    core.bind_swiss(b"pinned", pinned);
    core.run();
    assert_eq!(core.object_count(), 3);

    assert!(core.revoke_swiss(b"lone"));
    assert!(core.revoke_swiss(b"twice-1"));
    assert!(core.revoke_swiss(b"pinned"));
    core.run();
    assert_eq!(core.object_count(), 2, "only the lone object goes");
    assert_eq!(core.lookup_swiss(b"twice-2"), Some(twice));
    assert_eq!(core.lookup_swiss(b"twice-1"), None);
    assert!(core.is_revoked(b"twice-1"));
    assert!(!core.is_revoked(b"twice-2"));
    assert!(!core.is_revoked(b"never"));

    // The last swiss number, then the pin: each object goes with what kept it.
    assert!(core.revoke_swiss(b"twice-2"));
    core.unpin(pinned);
    core.run();
    assert_eq!(core.object_count(), 0);
}

#[test]
fn binding_a_swiss_number_again_lets_the_old_object_go() {
    let mut core = core();
    let old = echo(&mut core);
    core.bind_swiss(b"moved", old);
    let new = echo(&mut core);
    core.bind_swiss(b"moved", new);
    core.bind_swiss(b"moved", new);
    core.run();
    assert_eq!(core.object_count(), 1, "the old object is no longer kept");
    assert_eq!(core.lookup_swiss(b"moved"), Some(new));
    assert!(core.revoke_swiss(b"moved"));
    core.run();
    assert_eq!(core.object_count(), 0, "binding twice counted once");
}

#[test]
fn the_revoke_hook_hears_each_revocation_once() {
    let mut core = core();
    let obj = echo(&mut core);
    core.bind_swiss(b"heard", obj);
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = heard.clone();
    core.on_revoke(Box::new(move |s| h.lock().unwrap().push(s.to_vec())));
    assert!(core.revoke_swiss(b"heard"));
    assert!(!core.revoke_swiss(b"heard"));
    assert!(!core.revoke_swiss(b"unknown"));
    assert_eq!(*heard.lock().unwrap(), vec![b"heard".to_vec()]);
}

#[test]
fn revoked_swiss_numbers_are_remembered_within_a_bound() {
    let mut core = core();
    let obj = echo(&mut core);
    core.pin(obj);
    let swiss = |i: usize| format!("swiss-{i}").into_bytes();
    for i in 0..REVOKED_KEPT + 10 {
        core.bind_swiss(&swiss(i), obj);
        assert!(core.revoke_swiss(&swiss(i)));
    }
    // The oldest are forgotten (and then refused as unknown), the latest remembered.
    assert!(!core.is_revoked(&swiss(0)));
    assert!(!core.is_revoked(&swiss(9)));
    assert!(core.is_revoked(&swiss(10)));
    assert!(core.is_revoked(&swiss(REVOKED_KEPT + 9)));
    assert_eq!(core.lookup_swiss(&swiss(0)), None);
}

const CARED: &[u8] = b"a-caretaker-swiss-number-000003";

/// A fixture node with a caretaker for a fresh echo bound at [`CARED`].
fn node_with_caretaker() -> (Net, SimNode) {
    let (net, node) = start();
    node.with_core(|c| {
        let obj = echo(c);
        c.bind_revocable(CARED, CapRef::Local(obj));
    });
    (net, node)
}

#[test]
fn a_revoked_caretaker_breaks_the_references_fetched_before() {
    let (net, node) = node_with_caretaker();
    let mut p = net.connect(&node, my_location("caretaker", 5));
    p.setup();
    let live = p.fetch(CARED);
    let res = call_echo(&mut p, live.clone(), "through");
    assert_eq!(res[0], sym("fulfill"), "{res:?}");
    assert_eq!(res[1], Value::List(vec![Value::from("through")]));
    // Pipelined on the forwarded answer: it follows the target's answer.
    let answer = p.next_answer();
    p.deliver(live.clone(), vec![Value::from("first")], Some(answer));
    let r = p.deliver(
        rec("desc:answer", vec![int(answer)]),
        vec![Value::from("again")],
        None,
    );
    let res = p.resolution(r);
    assert_eq!(res[0], sym("break"), "{res:?}");
    let why = res[1].as_str().unwrap();
    assert!(
        why.contains("non-object"),
        "not sent to the echo's answer: {why}"
    );
    // A sturdyref minted for the caretaker itself dies with it.
    let minted = mint(&mut p, live.clone());

    net.drive();
    let before = node.objects();
    assert!(revoke(&net, &node, CARED));
    assert!(fetch_refused(&mut p, CARED).contains("revoked"));
    let res = call_echo(&mut p, live.clone(), "after");
    assert_eq!(res[0], sym("break"), "{res:?}");
    assert_eq!(
        res[1],
        Value::from(gobs_ocapn_proto::node::CARETAKER_REVOKED)
    );
    let via_minted = p.fetch(&minted.swiss);
    let res = call_echo(&mut p, via_minted, "after");
    assert_eq!(
        res[1],
        Value::from(gobs_ocapn_proto::node::CARETAKER_REVOKED)
    );
    assert!(
        gobs_ocapn_proto::node::CARETAKER_REVOKED.contains("ask whoever gave it to you"),
        "the error says what to do"
    );
    // The node's other swiss numbers are untouched.
    let other = p.fetch(ECHO_GC);
    assert_eq!(call_echo(&mut p, other, "still")[0], sym("fulfill"));

    // Once the minted swiss number goes too and the peer lets go, the caretaker goes.
    assert!(revoke(&net, &node, &minted.swiss));
    let Some(("desc:export", [pos])) = live.as_record() else {
        panic!("{live:?}")
    };
    let pos = pos.as_int().unwrap() as u64;
    p.send(&rec(
        "op:gc-export",
        vec![Value::List(vec![int(pos)]), Value::List(vec![int(2)])],
    ));
    net.drive();
    let after = node.objects();
    assert!(
        after < before,
        "the revoked caretaker was not collected: {after}"
    );
}

#[test]
fn a_caretaker_forwards_to_a_remote_target() {
    let net = Net::new();
    let target = fixture_node(&net, "target", SessionConfig::default());
    let front = fixture_node(&net, "front", SessionConfig::default());
    let p = front.enliven(&Sturdyref {
        peer: target.locator().clone(),
        swiss: ECHO_GC.to_vec(),
    });
    let Some(Ok(Term::Ref(remote))) = front.settled(p) else {
        panic!("the target's echo did not enliven")
    };
    front.with_core(|c| c.bind_revocable(CARED, remote));
    let mut p = net.connect(&front, my_location("caretaker-remote", 6));
    p.setup();
    let live = p.fetch(CARED);
    let res = call_echo(&mut p, live.clone(), "far");
    assert_eq!(res[0], sym("fulfill"), "{res:?}");
    assert_eq!(res[1], Value::List(vec![Value::from("far")]));
    assert!(revoke(&net, &front, CARED));
    let res = call_echo(&mut p, live, "far");
    assert_eq!(
        res[1],
        Value::from(gobs_ocapn_proto::node::CARETAKER_REVOKED)
    );
}
