//! An exporter tells a gobs peer the sturdyref of each gobs actor an answer carries,
//! ahead of that answer (`gobs:sturdyref-is` to the peer's bootstrap object), so the peer
//! need not ask for it; a peer that never asked a `gobs:` question (a Goblins one) is
//! never told.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn_proto::captp::Term;
use gobs_ocapn_proto::node::{Cx, LocalObject};
use gobs_ocapn_proto::syrup::Value;

/// A gobs actor's stand-in: answers every message with itself.
struct Itself;

impl LocalObject for Itself {
    fn deliver(&mut self, cx: &mut Cx<'_>, _args: Vec<Term>) -> Result<Term, Term> {
        Ok(Term::local(cx.me()))
    }

    fn actor_type(&self) -> Option<&str> {
        Some("told::Itself")
    }
}

/// A peer with an open session to a node that publishes an [`Itself`]; the actor's export.
fn peer_of_an_actor(tag: &str) -> (Net, SimNode, Peer, Value) {
    let (net, node) = start();
    node.with_core(|c| {
        let obj = c.spawn(Box::new(Itself));
        c.bind_swiss(b"itself", obj);
    });
    let mut p = open(&net, &node, tag);
    let actor = p.fetch(b"itself");
    (net, node, p, actor)
}

/// Calls `actor` and reads up to its answer: the sturdyrefs told before it, and it.
fn call(p: &mut Peer, actor: &Value) -> (Vec<Vec<Value>>, Vec<Value>) {
    let r = p.deliver(actor.clone(), vec![sym("again")], None);
    let mut told = Vec::new();
    loop {
        let m = p.recv().expect("the session ended before the answer");
        let Some(("op:deliver-only", f)) = m.as_record() else {
            continue;
        };
        let args = f[1]
            .as_list()
            .expect("a deliver's args are a list")
            .to_vec();
        if f[0] == export(0) && args[0] == sym("gobs:sturdyref-is") {
            told.push(args);
        } else if f[0] == export(r) {
            return (told, args);
        }
    }
}

/// Asks the node's bootstrap object `method <actor>`; its answer.
fn ask(p: &mut Peer, method: &str, actor: &Value) -> Vec<Value> {
    let r = p.deliver(export(0), vec![sym(method), actor.clone()], None);
    p.resolution(r)
}

#[test]
fn a_gobs_peer_is_told_an_answered_actors_sturdyref_before_the_answer() {
    let (_net, _node, mut p, actor) = peer_of_an_actor("gobs-peer");
    // Asking the actor's type shows the peer is a gobs node.
    assert_eq!(
        ask(&mut p, "gobs:actor-type", &actor),
        vec![sym("fulfill"), Value::from("told::Itself")]
    );
    let (told, answer) = call(&mut p, &actor);
    let Some(("desc:import-object", [pos])) = answer[1].as_record() else {
        panic!("the answer is not the actor: {answer:?}")
    };
    assert_eq!(export(position(pos)), actor, "it answers with itself");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        told[0][1], answer[1],
        "told of the object the answer carries"
    );
    // What it was told is what asking would have given.
    let asked = ask(&mut p, "gobs:sturdyref", &actor);
    assert_eq!(asked[0], sym("fulfill"));
    assert_eq!(told[0][2], asked[1]);
    assert!(
        told[0][2]
            .as_str()
            .is_some_and(|u| u.starts_with("ocapn://")),
        "{told:?}"
    );
}

#[test]
fn a_peer_that_asked_no_gobs_question_is_not_told() {
    let (_net, _node, mut p, actor) = peer_of_an_actor("goblins-peer");
    let (told, answer) = call(&mut p, &actor);
    assert_eq!(answer[0], sym("fulfill"));
    assert!(told.is_empty(), "{told:?}");
}

#[test]
fn a_sturdyref_told_for_a_promise_is_refused() {
    let (_net, _node, mut p, _actor) = peer_of_an_actor("promiser");
    // A promise has no sturdyref: only objects are told.
    let mine = p.next_import();
    let r = p.deliver(
        export(0),
        vec![
            sym("gobs:sturdyref-is"),
            import_promise(mine),
            Value::from("ocapn://x.sim/s/aaaa"),
        ],
        None,
    );
    assert_eq!(p.resolution(r)[0], sym("break"));
}
