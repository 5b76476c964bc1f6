//! Exported objects are collected: when every peer that imported one has let go of it
//! (`op:gc-export`, or its session ended), the node drops it without the host calling
//! anything; objects bound to a swiss number stay. Checked at the wire with the node's
//! object count, on gobs actors' exports (the fixtures' are in gobs-ocapn-proto's
//! `collect.rs`, on the pair harness).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::syrup::Value;
use gobs_ocapn::vat::export_actor;
use gobs_runtime::{Ref, Vat, define_actor, spawn};

#[define_actor]
pub struct Counter {
    n: u64,
}

#[define_actor]
impl Counter {
    pub fn increment(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

#[define_actor]
pub struct Maker {
    made: Vec<Ref<Counter>>,
}

#[define_actor]
impl Maker {
    pub fn make(&mut self) -> Ref<Counter> {
        let c = spawn(Counter { n: 0 });
        self.made.push(c.clone());
        c
    }
}

fn maker_node() -> (TestNode, Vat) {
    let node = TestNode::start();
    let vat = Vat::spawn("maker").unwrap();
    let maker = vat.spawn_actor(Maker { made: vec![] }).unwrap();
    let n = node.node.clone();
    node.rt.block_on(async move {
        let Term::Ref(CapRef::Local(obj)) = export_actor(&n, maker).await.unwrap() else {
            panic!()
        };
        n.with_core(move |c| c.bind_swiss(b"maker", obj))
            .await
            .unwrap();
    });
    (node, vat)
}

fn import_pos(v: &Value) -> u64 {
    match v.as_record() {
        Some(("desc:import-object", [p])) => p.as_int().unwrap() as u64,
        other => panic!("not an object: {other:?}"),
    }
}

#[test]
fn an_exported_actor_the_peer_dropped_is_collected() {
    let (node, vat) = maker_node();
    let mut p = Peer::connect(node.addr(), my_location("gc", 1));
    p.setup();
    let maker = p.fetch(b"maker");
    let before = node.objects();
    let r = p.deliver(maker.clone(), vec![sym("make")], None);
    let res = p.resolution(r);
    let first = import_pos(&res[1]);
    p.sync();
    assert_eq!(node.objects(), before + 1, "one object per export");
    let r = p.deliver(export(first), vec![sym("increment")], None);
    assert_eq!(p.resolution(r)[1], int(1));

    // The peer lets go: the node drops the object (no release by the host).
    p.gc_export(first, 1);
    p.sync();
    assert_eq!(node.objects(), before);

    // The swiss-bound maker stays, and makes a fresh export that works.
    let r = p.deliver(maker, vec![sym("make")], None);
    let second = import_pos(&p.resolution(r)[1]);
    let r = p.deliver(export(second), vec![sym("increment")], None);
    assert_eq!(p.resolution(r)[1], int(1));
    vat.shutdown();
}

#[test]
fn an_object_is_kept_until_every_reference_sent_is_released() {
    let (node, vat) = maker_node();
    let mut p = Peer::connect(node.addr(), my_location("gc", 1));
    p.setup();
    let maker = p.fetch(b"maker");
    let echo = p.fetch(gobs_ocapn::fixtures::ECHO_GC);
    p.sync();
    let before = node.objects();
    let r = p.deliver(maker, vec![sym("make")], None);
    let counter = import_pos(&p.resolution(r)[1]);
    // Sent a second time (inside a list answer of the echo fixture): the reference count
    // is 2; releasing one keeps it.
    let r = p.deliver(echo, vec![export(counter)], None);
    assert_eq!(
        p.resolution(r)[1],
        Value::List(vec![import_object(counter)])
    );
    // Exactly one object more: the counter (the messages' promises are gone).
    p.sync();
    assert_eq!(node.objects(), before + 1);
    p.gc_export(counter, 1);
    // The node reads the release before this message, which must still reach the counter.
    let r = p.deliver(export(counter), vec![sym("increment")], None);
    assert_eq!(
        p.resolution(r)[1],
        int(1),
        "still there after one of two releases"
    );
    p.sync();
    assert_eq!(node.objects(), before + 1);
    p.gc_export(counter, 1);
    p.sync();
    // Back to exactly the count before: the counter, and nothing the messages made, stays.
    assert_eq!(
        node.objects(),
        before,
        "an object outlived every reference sent"
    );
    vat.shutdown();
}

#[test]
fn a_lost_session_lets_go_of_what_its_peer_held() {
    let (node, vat) = maker_node();
    let before = node.objects();
    {
        let mut p = Peer::connect(node.addr(), my_location("gone", 1));
        p.setup();
        let maker = p.fetch(b"maker");
        for _ in 0..5 {
            let r = p.deliver(maker.clone(), vec![sym("make")], None);
            import_pos(&p.resolution(r)[1]);
        }
        p.sync();
        assert_eq!(
            node.objects(),
            before + 1 + 5,
            "its bootstrap and five counters"
        );
        p.close();
    } // the connection is closed: its bootstrap and its five counters went
    assert_eq!(node.objects(), before);
    vat.shutdown();
}

#[test]
fn an_object_in_a_message_waiting_on_a_promise_is_kept_until_it_is_delivered() {
    let (node, vat) = maker_node();
    let mut p = Peer::connect(node.addr(), my_location("queued", 1));
    p.setup();
    let maker = p.fetch(b"maker");
    let r = p.deliver(maker, vec![sym("make")], None);
    let counter = import_pos(&p.resolution(r)[1]);
    let echo = p.fetch(gobs_ocapn::fixtures::ECHO_GC);

    // A message carrying the counter waits on a pending promise of the node...
    let (vow, resolver) = p.promise_pair();
    let queued = p.deliver(vow, vec![sym("ping"), export(counter)], None);
    // ...while the peer lets go of its import: the message still holds the counter.
    p.gc_export(counter, 1);
    p.sync();
    let with_queued = node.objects();

    // Resolved to the echo object (the node reads the release first), the message arrives
    // with the counter, which works.
    p.send(&rec(
        "op:deliver-only",
        vec![resolver, Value::List(vec![sym("fulfill"), echo])],
    ));
    let res = p.resolution(queued);
    assert_eq!(res[0], sym("fulfill"), "{res:?}");
    let echoed = res[1].as_list().unwrap();
    let again = import_pos(&echoed[1]);
    let r = p.deliver(export(again), vec![sym("increment")], None);
    assert_eq!(p.resolution(r), vec![sym("fulfill"), int(1)]);

    // Once delivered and released again, it goes.
    p.gc_export(again, 1);
    p.sync();
    assert!(node.objects() < with_queued, "the counter stayed");
    vat.shutdown();
}
