//! Exported objects are collected: when every peer that imported one has let go of it
//! (`op:gc-export`, or its session ended), the node drops it without the host calling
//! anything; objects bound to a swiss number stay. Checked at the wire with the node's
//! object count, on a gobs actor's export and on the conformance fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn::captp::{Ref as CapRef, Term};
use gobs_ocapn::fixtures::{CAR_FACTORY_BUILDER, GREETER};
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

fn gc_export(p: &mut Peer, pos: u64, count: u64) {
    p.send(&rec(
        "op:gc-export",
        vec![Value::List(vec![int(pos)]), Value::List(vec![int(count)])],
    ));
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
    assert_eq!(
        node.settles_at(before + 1),
        before + 1,
        "one object per export"
    );
    let r = p.deliver(export(first), vec![sym("increment")], None);
    assert_eq!(p.resolution(r)[1], int(1));

    // The peer lets go: the node drops the object (no release by the host).
    gc_export(&mut p, first, 1);
    assert_eq!(node.settles_at(before), before);

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
    let before = node.settles_at(node.objects());
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
    assert_eq!(node.settles_at(before + 1), before + 1);
    gc_export(&mut p, counter, 1);
    // The node reads the release before this message, which must still reach the counter.
    let r = p.deliver(export(counter), vec![sym("increment")], None);
    assert_eq!(
        p.resolution(r)[1],
        int(1),
        "still there after one of two releases"
    );
    assert_eq!(node.settles_at(before + 1), before + 1);
    gc_export(&mut p, counter, 1);
    // Back to exactly the count before: the counter, and nothing the messages made, stays.
    assert_eq!(
        node.settles_at(before),
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
        assert!(node.objects() >= before + 5);
    } // the connection closes: its bootstrap and its five counters go
    assert_eq!(node.settles_at(before), before);
    vat.shutdown();
}

#[test]
fn fixtures_made_per_message_are_collected_and_sturdy_ones_stay() {
    let node = TestNode::start();
    let mut p = Peer::connect(node.addr(), my_location("cars", 1));
    p.setup();
    let greeter = p.fetch(GREETER);
    let builder = p.fetch(CAR_FACTORY_BUILDER);
    let before = node.objects();
    let r = p.deliver(builder, vec![], None);
    let factory = import_pos(&p.resolution(r)[1]);
    let r = p.deliver(
        export(factory),
        vec![Value::List(vec![sym("red"), sym("coupe")])],
        None,
    );
    let car = import_pos(&p.resolution(r)[1]);
    assert!(node.objects() >= before + 2);
    gc_export(&mut p, car, 1);
    gc_export(&mut p, factory, 1);
    assert_eq!(node.settles_at(before), before);
    // The greeter is bound to its swiss number: released, it stays, and fetches again.
    let Some(("desc:export", [g])) = greeter.as_record() else {
        panic!()
    };
    gc_export(&mut p, g.as_int().unwrap() as u64, 1);
    // The node reads the release before this fetch.
    let again = p.fetch(GREETER);
    let me = p.next_import();
    p.send(&rec(
        "op:deliver-only",
        vec![again, Value::List(vec![import_object(me)])],
    ));
    let (_, args) = p.expect_to(&export(me));
    assert_eq!(args, vec![Value::from("Hello")]);
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
    gc_export(&mut p, counter, 1);
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
    gc_export(&mut p, again, 1);
    assert!(
        node.objects_when(|n| n < with_queued) < with_queued,
        "the counter stayed"
    );
    vat.shutdown();
}
