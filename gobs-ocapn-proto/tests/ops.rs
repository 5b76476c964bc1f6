//! The rest of the draft spec's operations, at the wire: `op:listen`'s wants-partial
//! (told of a resolution to another promise at once, or only of the settled value),
//! `op:get` / `op:index` / `op:untag` pipelined on answers, and one session per peer
//! pair (a second session from the same peer is aborted, or replaces the first).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn_proto::captp::{DuplicateSession, SessionConfig};
use gobs_ocapn_proto::fixtures::*;
use gobs_ocapn_proto::syrup::Value;

fn listen(p: &mut Peer, to: Value, partial: bool) -> u64 {
    let l = p.next_import();
    p.send(&rec(
        "op:listen",
        vec![to, import_object(l), Value::Bool(partial)],
    ));
    l
}

fn resolve(p: &mut Peer, resolver: Value, how: &str, v: Value) {
    p.send(&rec(
        "op:deliver-only",
        vec![resolver, Value::List(vec![sym(how), v])],
    ));
}

#[test]
fn wants_partial_is_told_of_a_promise_the_other_only_of_the_value() {
    let (net, node) = start();
    let mut p = open(&net, &node, "partial");
    let (a, resolve_a) = p.promise_pair();
    let (b, resolve_b) = p.promise_pair();
    let partial = listen(&mut p, a.clone(), true);
    let settled = listen(&mut p, a.clone(), false);
    // A is resolved to B, which is still pending.
    resolve(&mut p, resolve_a, "fulfill", b);
    let (_, args) = p.expect_to(&export(partial));
    assert_eq!(args[0], sym("fulfill"));
    assert_eq!(
        args[1].as_record().map(|r| r.0),
        Some("desc:import-promise"),
        "{args:?}"
    );
    // The other listener hears only the settled value, once B settles.
    resolve(&mut p, resolve_b, "fulfill", sym("done"));
    loop {
        let m = p.recv().unwrap();
        let Some((label, f)) = m.as_record() else {
            continue;
        };
        if label == "op:deliver" || label == "op:deliver-only" {
            assert_ne!(f[0], export(partial), "a listen is told once: {m:?}");
            if f[0] == export(settled) {
                assert_eq!(f[1], Value::List(vec![sym("fulfill"), sym("done")]));
                break;
            }
        }
    }
}

fn select(p: &mut Peer, op: &str, to: Value, which: Value) -> u64 {
    let a = p.next_answer();
    p.send(&rec(op, vec![to, which, int(a)]));
    a
}

#[test]
fn get_index_and_untag_take_apart_a_pipelined_answer() {
    let (net, node) = start();
    let mut p = open(&net, &node, "select");
    let echo = p.fetch(ECHO_GC);
    let strukt = Value::Dict(vec![(Value::from("k"), sym("v"))]);
    let tagged = rec("my-tag", vec![int(42)]);
    // All sent before the echo answers: each selects from a promise.
    let a = p.next_answer();
    p.deliver(echo, vec![strukt, int(5), tagged], Some(a));
    let first = select(&mut p, "op:index", answer(a), int(0));
    let field = select(&mut p, "op:get", answer(first), Value::from("k"));
    let tag = select(&mut p, "op:index", answer(a), int(2));
    let untagged = select(&mut p, "op:untag", answer(tag), Value::from("my-tag"));
    let out_of_bounds = select(&mut p, "op:index", answer(a), int(9));
    let no_field = select(&mut p, "op:get", answer(first), Value::from("nope"));
    let wrong_tag = select(&mut p, "op:untag", answer(tag), Value::from("other"));
    let not_a_list = select(&mut p, "op:index", answer(field), int(0));

    let l = listen(&mut p, answer(field), true);
    assert_eq!(p.resolution(l), vec![sym("fulfill"), sym("v")]);
    let l = listen(&mut p, answer(untagged), true);
    assert_eq!(p.resolution(l), vec![sym("fulfill"), int(42)]);
    for (pos, why) in [
        (out_of_bounds, "index 9 is out of bounds of a list of 3"),
        (no_field, "the struct has no field"),
        (wrong_tag, "op:untag: the tag is"),
        (not_a_list, "is not a list"),
    ] {
        let l = listen(&mut p, answer(pos), true);
        let res = p.resolution(l);
        assert_eq!(res[0], sym("break"), "{res:?}");
        assert!(format!("{res:?}").contains(why), "{why}: {res:?}");
    }
}

#[test]
fn a_select_from_a_broken_promise_breaks_with_its_error() {
    let (net, node) = start();
    let mut p = open(&net, &node, "select-broken");
    let (vow, resolver) = p.promise_pair();
    let a = select(&mut p, "op:index", vow, int(0));
    resolve(&mut p, resolver, "break", sym("oh-no"));
    let l = listen(&mut p, answer(a), true);
    assert_eq!(p.resolution(l), vec![sym("break"), sym("oh-no")]);
}

#[test]
fn a_second_session_from_the_same_peer_is_aborted() {
    let (net, node) = start();
    let mut first = open(&net, &node, "twice");
    let mut second = net.connect(&node, my_location("twice", 1));
    let h = second.hello("1.0");
    second.send(&h);
    let abort = second.expect("op:abort");
    assert!(
        format!("{abort:?}").contains("a session with this peer is already open"),
        "{abort:?}"
    );
    // The first is untouched.
    let greeter = first.fetch(GREETER);
    assert_eq!(greeted(&mut first, greeter).1, vec![Value::from("Hello")]);
    // Once the node has seen the first end, the peer may open a session again, at once.
    assert_eq!(node.sessions_with("twice"), 1);
    first.close();
    assert_eq!(
        node.sessions_with("twice"),
        0,
        "the node still holds the closed session"
    );
    let mut again = net.connect(&node, my_location("twice", 1));
    again.setup();
    again.fetch(GREETER);
}

#[test]
fn with_replace_old_the_newer_session_wins() {
    let (net, node) = start_with(SessionConfig {
        duplicate_session: DuplicateSession::ReplaceOld,
        ..SessionConfig::default()
    });
    let mut first = open(&net, &node, "again");
    let mut second = open(&net, &node, "again");
    let abort = first.expect("op:abort");
    assert!(
        format!("{abort:?}").contains("replaced by a newer session"),
        "{abort:?}"
    );
    second.fetch(GREETER);
}
