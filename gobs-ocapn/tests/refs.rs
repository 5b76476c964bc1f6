//! References through calls by name, at the wire: a raw-Syrup peer passes its own
//! objects and promises (`desc:import-object`, `desc:import-promise`) and pipelined
//! answers (`desc:answer`) to an exported `#[define_actor]` actor, which keeps them and
//! sends to them; the actor answers with its own references, which the peer can call and
//! hand back (`desc:export`), arriving as the typed `Ref<T>` they are. Then three nodes:
//! a reference received from one peer, returned to another, reaches the first through a
//! handoff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::syrup::Value;
use gobs_ocapn::vat::{RemoteObject, export_actor};
use gobs_runtime::{Promise, Ref, Vat, define_actor, spawn};

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

    pub fn get(&self) -> u64 {
        self.n
    }
}

/// Keeps what peers hand it and makes counters in its own vat.
#[define_actor]
pub struct Desk {
    peers: Vec<RemoteObject>,
    counter: Option<Ref<Counter>>,
}

#[define_actor]
impl Desk {
    /// Keeps a peer's reference and greets it, from inside the turn.
    pub fn keep(&mut self, peer: RemoteObject) -> usize {
        let _ = peer.send("hello", vec![Term::str("from the desk")]);
        self.peers.push(peer);
        self.peers.len()
    }

    /// Keeps and greets it, then fails: the greeting must never leave.
    pub fn keep_then_fail(&mut self, peer: RemoteObject) -> Result<usize, String> {
        let _ = peer.send("never", vec![]);
        self.peers.push(peer);
        Err("refused on purpose".into())
    }

    /// Answers with the reference kept at `i`.
    pub fn kept(&self, i: u64) -> Option<RemoteObject> {
        self.peers.get(i as usize).cloned()
    }

    /// A counter of this vat (the same one each time).
    pub fn counter(&mut self) -> Ref<Counter> {
        self.counter
            .get_or_insert_with(|| spawn(Counter { n: 0 }))
            .clone()
    }

    /// Reads a counter handed back: it arrives as the typed reference it is.
    pub fn read(&self, c: Ref<Counter>) -> Result<u64, gobs_runtime::Error> {
        c.call().get()
    }

    /// Increments whatever it is handed, by name, through the network layer.
    pub fn bump(&self, c: RemoteObject) -> Promise<u64> {
        c.call("increment", &())
    }
}

fn desk_node() -> (TestNode, Vat, Ref<Desk>) {
    let node = TestNode::start();
    let vat = Vat::spawn("desk").unwrap();
    let desk = vat
        .spawn_actor(Desk {
            peers: vec![],
            counter: None,
        })
        .unwrap();
    let n = node.node.clone();
    let d = desk.clone();
    node.rt.block_on(async move {
        let Term::Ref(CapRef::Local(obj)) = export_actor(&n, d).await.unwrap() else {
            panic!("export_actor gave no local reference")
        };
        n.with_core(move |c| c.bind_swiss(b"desk", obj))
            .await
            .unwrap();
    });
    (node, vat, desk)
}

fn open(node: &TestNode) -> Peer {
    let mut p = Peer::connect(node.addr(), my_location("refs", 1));
    p.setup();
    p
}

/// Reads until the resolution sent to our resolver `r` (a direct one), keeping the
/// deliveries that came before it: (resolution, [(target, args)]). The node asks our
/// bootstrap for a sturdyref to each object we pass (`gobs:sturdyref`, a gobs extension);
/// this peer answers as a peer without it does, with a break, and counts the asks.
fn resolution_and_before(p: &mut Peer, r: u64) -> (Vec<Value>, Vec<(Value, Vec<Value>)>) {
    let mut before = Vec::new();
    loop {
        let m = p.recv().expect("connection ended before the resolution");
        let Some((label, f)) = m.as_record() else {
            continue;
        };
        if label != "op:deliver" && label != "op:deliver-only" {
            continue;
        }
        let args = f[1].as_list().unwrap().to_vec();
        if f[0] == export(r) {
            return (args, before);
        }
        if f[0] == export(0) && args[0] == sym("gobs:sturdyref") {
            let Some(("desc:import-object", [resolver])) = f[3].as_record() else {
                panic!("gobs:sturdyref without a resolver: {m:?}")
            };
            let resolver = export(resolver.as_int().unwrap() as u64);
            p.send(&rec(
                "op:deliver-only",
                vec![
                    resolver,
                    Value::List(vec![sym("break"), Value::from("no such method")]),
                ],
            ));
            before.push((sym("asked-for-a-sturdyref"), args[1..].to_vec()));
            continue;
        }
        before.push((f[0].clone(), args));
    }
}

fn resolve(p: &mut Peer, r: u64) -> Vec<Value> {
    resolution_and_before(p, r).0
}

fn fulfilled(res: Vec<Value>) -> Value {
    assert_eq!(res[0], sym("fulfill"), "broken: {res:?}");
    res[1].clone()
}

#[test]
fn a_peer_object_passed_in_is_kept_and_sent_to() {
    let (node, vat, desk) = desk_node();
    let mut p = open(&node);
    let d = p.fetch(b"desk");
    let mine = p.next_import();
    let r = p.deliver(d, vec![sym("keep"), import_object(mine)], None);
    let (res, before) = resolution_and_before(&mut p, r);
    assert_eq!(fulfilled(res), int(1));
    // The actor's send from its turn reaches our object (it leaves as the turn commits,
    // before the answer).
    assert_eq!(
        before,
        vec![
            (sym("asked-for-a-sturdyref"), vec![export(mine)]),
            (
                export(mine),
                vec![sym("hello"), Value::from("from the desk")]
            )
        ]
    );
    // It holds a far reference (no near call on it).
    let kept = desk.send_with(|d: &Desk| d.peers.len()).wait().unwrap();
    assert_eq!(kept, 1);
    vat.shutdown();
}

#[test]
fn a_failed_turn_sends_nothing_to_a_passed_reference() {
    let (node, vat, _desk) = desk_node();
    let mut p = open(&node);
    let d = p.fetch(b"desk");
    let (doomed, later) = (p.next_import(), p.next_import());
    let r = p.deliver(
        d.clone(),
        vec![sym("keep-then-fail"), import_object(doomed)],
        None,
    );
    // A symbol method name with dashes is not a Rust name: it is refused, naming it.
    let res = resolve(&mut p, r);
    assert_eq!(res[0], sym("break"));
    let r = p.deliver(
        d.clone(),
        vec![sym("keep_then_fail"), import_object(doomed)],
        None,
    );
    let res = resolve(&mut p, r);
    assert_eq!(res[0], sym("break"));
    assert!(format!("{res:?}").contains("refused on purpose"), "{res:?}");
    let r = p.deliver(d, vec![sym("keep"), import_object(later)], None);
    let (res, before) = resolution_and_before(&mut p, r);
    assert_eq!(fulfilled(res), int(1), "the failed turn kept nothing");
    // The later greeting went out; nothing was ever sent to the doomed object.
    let targets: Vec<&Value> = before.iter().map(|(t, _)| t).collect();
    assert_eq!(
        targets,
        vec![&sym("asked-for-a-sturdyref"), &export(later)],
        "{before:?}"
    );
    vat.shutdown();
}

#[test]
fn an_actor_answers_with_its_own_reference_and_gets_it_back_typed() {
    let (node, vat, desk) = desk_node();
    let mut p = open(&node);
    let d = p.fetch(b"desk");
    let r = p.deliver(d.clone(), vec![sym("counter")], None);
    let answer = fulfilled(p.resolution(r));
    let Some(("desc:import-object", [pos])) = answer.as_record() else {
        panic!("counter did not answer with an object")
    };
    let counter = pos.as_int().unwrap() as u64;
    // The same actor again is the same export.
    let r = p.deliver(d.clone(), vec![sym("counter")], None);
    assert_eq!(fulfilled(p.resolution(r)), import_object(counter));
    // Callable by name...
    let r = p.deliver(export(counter), vec![sym("increment")], None);
    assert_eq!(fulfilled(p.resolution(r)), int(1));
    // ...and handed back it is the typed `Ref<Counter>` again (a near call reads it).
    let r = p.deliver(d.clone(), vec![sym("read"), export(counter)], None);
    assert_eq!(fulfilled(p.resolution(r)), int(1));
    let local = desk
        .send_with(|d: &Desk| d.counter.clone())
        .wait()
        .unwrap()
        .unwrap();
    assert_eq!(local.send().get().wait().unwrap(), 1);

    // A peer's own object where a `Ref<Counter>` is wanted: taken as a far `Ref<Counter>`,
    // on which `read`'s near call is an error naming the fix.
    let mine = p.next_import();
    let r = p.deliver(d, vec![sym("read"), import_object(mine)], None);
    let res = resolve(&mut p, r);
    assert_eq!(res[0], sym("break"));
    let why = format!("{res:?}");
    assert!(
        why.contains("cannot call Counter at remote object") && why.contains("use `.send()`"),
        "{why}"
    );
    vat.shutdown();
}

#[test]
fn a_pipelined_answer_passed_in_is_a_far_reference() {
    let (node, vat, _desk) = desk_node();
    let mut p = open(&node);
    let d = p.fetch(b"desk");
    // `counter` answers at position a; `bump` gets `desc:answer a` before it resolves.
    let a = p.next_answer();
    p.deliver(d.clone(), vec![sym("counter")], Some(a));
    let r = p.deliver(d.clone(), vec![sym("bump"), answer(a)], None);
    assert_eq!(fulfilled(p.resolution(r)), int(1));
    let r = p.deliver(d, vec![sym("bump"), answer(a)], None);
    assert_eq!(fulfilled(p.resolution(r)), int(2));
    vat.shutdown();
}

#[test]
fn a_peer_promise_passed_in_is_sent_to_and_its_answer_kept() {
    let (node, vat, _desk) = desk_node();
    let mut p = open(&node);
    let d = p.fetch(b"desk");
    let promise = p.next_import();
    let r = p.deliver(d.clone(), vec![sym("keep"), import_promise(promise)], None);
    let (res, before) = resolution_and_before(&mut p, r);
    assert_eq!(fulfilled(res), int(1));
    // The greeting is sent to the promise itself (pipelined to its exporter, us).
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].0, export(promise));
    assert_eq!(before[0].1[0], sym("hello"));
    // The desk answers with it: our own promise again (`desc:export`), so its answer
    // follows ours — the node listens to it, and answers once we settle it.
    let r = p.deliver(d, vec![sym("kept"), int(0)], None);
    let listen = p.expect("op:listen");
    let f = listen.as_record().unwrap().1;
    assert_eq!(f[0], export(promise));
    let Some(("desc:import-object", [resolver])) = f[1].as_record() else {
        panic!("op:listen without a resolver: {listen:?}")
    };
    let resolver = export(resolver.as_int().unwrap() as u64);
    p.send(&rec(
        "op:deliver-only",
        vec![resolver, Value::List(vec![sym("fulfill"), int(42)])],
    ));
    assert_eq!(fulfilled(p.resolution(r)), int(42));
    vat.shutdown();
}

/// Three nodes: the machine's node passes its actor to the desk; a third node asks the
/// desk for it and reaches the machine's actor through a handoff.
#[test]
fn a_reference_received_from_one_peer_is_passed_to_another() {
    let (desk_node, vat, _desk) = desk_node();
    let machine = TestNode::start();
    let other = TestNode::start();
    let machine_vat = Vat::spawn("machine").unwrap();
    let counter = machine_vat.spawn_actor(Counter { n: 40 }).unwrap();
    let sturdyref = Sturdyref {
        peer: desk_node.locator.clone(),
        swiss: b"desk".to_vec(),
    };
    let (m, o) = (machine.node.clone(), other.node.clone());
    let s = sturdyref.clone();
    let c = counter.clone();
    let kept: usize = machine
        .rt
        .block_on(async move {
            let desk = RemoteObject::enliven(&m, &s).await.unwrap();
            desk.call("keep", &(c,)).await
        })
        .unwrap();
    assert_eq!(kept, 1);
    let n: u64 = other
        .rt
        .block_on(async move {
            let desk = RemoteObject::enliven(&o, &sturdyref).await.unwrap();
            let far: Option<RemoteObject> = desk.call("kept", &(0u64,)).await.unwrap();
            far.unwrap().call("increment", &()).await
        })
        .unwrap();
    assert_eq!(n, 41);
    assert_eq!(counter.send().get().wait().unwrap(), 41);
    machine_vat.shutdown();
    vat.shutdown();
}

/// `gobs:actor-type`, the bootstrap extension a typed far reference checks its type
/// with: an exported actor's registry name; a fixture is not an actor; a promise or a
/// datum is refused.
#[test]
fn the_bootstrap_says_which_actor_an_export_stands_for() {
    let (node, vat, _desk) = desk_node();
    let mut p = open(&node);
    let desk = p.fetch(b"desk");
    let r = p.deliver(export(0), vec![sym("gobs:actor-type"), desk], None);
    assert_eq!(
        p.resolution(r),
        vec![sym("fulfill"), Value::from("refs::Desk")]
    );
    let greeter = p.fetch(gobs_ocapn::fixtures::GREETER);
    let r = p.deliver(export(0), vec![sym("gobs:actor-type"), greeter], None);
    assert_eq!(
        p.resolution(r),
        vec![sym("break"), Value::from("that object is not a gobs actor")]
    );
    let r = p.deliver(export(0), vec![sym("gobs:actor-type"), int(3)], None);
    let res = p.resolution(r);
    assert_eq!(res[0], sym("break"), "{res:?}");
    vat.shutdown();
}
