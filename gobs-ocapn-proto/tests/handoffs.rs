//! Third-party handoffs at the wire, with a raw-Syrup peer in each of the other two roles
//! (the node as exporter, gifter and receiver), and crossed hellos (the node dials a peer
//! while that peer dials it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn_proto::captp::{KeyPair, PublicKey};
use gobs_ocapn_proto::fixtures::*;
use gobs_ocapn_proto::syrup::Value;

fn handoff_give(
    receiver: &PublicKey,
    exporter: Value,
    session: [u8; 32],
    side: [u8; 32],
    gift: &[u8],
) -> Value {
    rec(
        "desc:handoff-give",
        vec![
            receiver.to_value(),
            exporter,
            Value::Bytes(session.to_vec()),
            Value::Bytes(side.to_vec()),
            Value::Bytes(gift.to_vec()),
        ],
    )
}

fn envelope(keys: &KeyPair, v: Value) -> Value {
    let sig = keys.sign_value(&v);
    rec("desc:sig-envelope", vec![v, sig])
}

struct ExporterSetup {
    node: SimNode,
    g2e: Peer,
    r2e: Peer,
    r2g_keys: KeyPair,
    greeter: Value,
}

fn exporter_setup() -> ExporterSetup {
    let (net, node) = start();
    let mut g2e = open(&net, &node, "gifter");
    let r2e = open(&net, &node, "receiver");
    let greeter = g2e.fetch(GREETER);
    drop(net);
    ExporterSetup {
        node,
        g2e,
        r2e,
        r2g_keys: KeyPair::generate().unwrap(),
        greeter,
    }
}

impl ExporterSetup {
    fn signed_give(&self, gift: &[u8]) -> Value {
        let give = handoff_give(
            &self.r2g_keys.public(),
            self.node.locator().to_value(),
            self.g2e.session_id(),
            self.g2e.keys.public().side_id(),
            gift,
        );
        envelope(&self.g2e.keys, give)
    }

    fn signed_receive(&self, give: Value, count: u64) -> Value {
        let receive = rec(
            "desc:handoff-receive",
            vec![
                Value::Bytes(self.r2e.session_id().to_vec()),
                Value::Bytes(self.r2e.keys.public().side_id().to_vec()),
                int(count),
                give,
            ],
        );
        envelope(&self.r2g_keys, receive)
    }

    fn deposit(&mut self, gift: &[u8]) {
        let greeter = self.greeter.clone();
        self.g2e.send(&rec(
            "op:deliver-only",
            vec![
                export(0),
                Value::List(vec![
                    sym("deposit-gift"),
                    Value::Bytes(gift.to_vec()),
                    greeter,
                ]),
            ],
        ));
    }

    fn withdraw(&mut self, receive: Value) -> Vec<Value> {
        let r = self
            .r2e
            .deliver(export(0), vec![sym("withdraw-gift"), receive], None);
        self.r2e.resolution(r)
    }
}

#[test]
fn exporter_hands_over_a_deposited_gift() {
    let mut s = exporter_setup();
    s.deposit(b"my-gift");
    let give = s.signed_give(b"my-gift");
    let res = s.withdraw(s.signed_receive(give, 0));
    assert_eq!(res[0], sym("fulfill"), "{res:?}");
    assert_eq!(res[1].as_record().unwrap().0, "desc:import-object");
}

#[test]
fn exporter_waits_for_a_late_deposit() {
    let mut s = exporter_setup();
    let give = s.signed_give(b"late");
    let receive = s.signed_receive(give, 0);
    let r = s
        .r2e
        .deliver(export(0), vec![sym("withdraw-gift"), receive], None);
    s.deposit(b"late");
    let res = s.r2e.resolution(r);
    assert_eq!(res[0], sym("fulfill"), "{res:?}");
    assert_eq!(res[1].as_record().unwrap().0, "desc:import-object");
}

#[test]
fn exporter_refuses_a_reused_handoff_count() {
    let mut s = exporter_setup();
    s.deposit(b"g");
    let give = s.signed_give(b"g");
    let receive = s.signed_receive(give, 0);
    assert_eq!(s.withdraw(receive.clone())[0], sym("fulfill"));
    s.deposit(b"g");
    let res = s.withdraw(receive);
    assert_eq!(res[0], sym("break"));
    assert!(format!("{res:?}").contains("already used"), "{res:?}");
}

#[test]
fn exporter_refuses_bad_signatures() {
    let mut s = exporter_setup();
    s.deposit(b"g");
    // The receive signed by the wrong key.
    let give = s.signed_give(b"g");
    let receive = rec(
        "desc:handoff-receive",
        vec![
            Value::Bytes(s.r2e.session_id().to_vec()),
            Value::Bytes(vec![0; 32]),
            int(0),
            give,
        ],
    );
    let res = s.withdraw(envelope(&KeyPair::generate().unwrap(), receive));
    assert_eq!(res[0], sym("break"));
    // The give signed by someone other than the gifter.
    let forged_give = envelope(
        &KeyPair::generate().unwrap(),
        handoff_give(
            &s.r2g_keys.public(),
            s.node.locator().to_value(),
            s.g2e.session_id(),
            [0; 32],
            b"g",
        ),
    );
    let res = s.withdraw(s.signed_receive(forged_give, 1));
    assert_eq!(res[0], sym("break"));
    // The gift is still there for the rightful receiver.
    let give = s.signed_give(b"g");
    assert_eq!(s.withdraw(s.signed_receive(give, 2))[0], sym("fulfill"));
}

#[test]
fn gifter_deposits_and_gives_a_signed_handoff() {
    let (net, node) = start();
    let eloc = my_location("exporter", 7);
    // The exporter has a session with the node (it dialled in).
    let mut e2g = net.connect(&node, eloc.clone());
    e2g.setup();
    let mut r2g = open(&net, &node, "receiver");
    let enlivener = r2g.fetch(STURDYREF_ENLIVENER);
    let sturdyref = rec(
        "ocapn-sturdyref",
        vec![eloc.clone(), Value::Bytes(b"some-object".to_vec())],
    );
    let r = r2g.deliver(enlivener, vec![sturdyref], None);
    // The node fetches over the existing session (one session per peer pair).
    let (fetch, args) = e2g.expect_to(&export(0));
    assert_eq!(
        args,
        vec![sym("fetch"), Value::Bytes(b"some-object".to_vec())]
    );
    let resolver = export(
        fetch.as_record().unwrap().1[3].as_record().unwrap().1[0]
            .as_int()
            .unwrap() as u64,
    );
    let obj = e2g.next_import();
    e2g.send(&rec(
        "op:deliver-only",
        vec![
            resolver,
            Value::List(vec![sym("fulfill"), import_object(obj)]),
        ],
    ));
    // Gift deposited at the exporter…
    let (_, deposit) = e2g.expect_to(&export(0));
    assert_eq!(deposit[0], sym("deposit-gift"));
    assert_eq!(deposit[2], export(obj));
    // …and a handoff-give sent to the receiver.
    let res = r2g.resolution(r);
    assert_eq!(res[0], sym("fulfill"));
    let Some(("desc:sig-envelope", [give, sig])) = res[1].as_record() else {
        panic!("{res:?}")
    };
    let f = give.as_record().unwrap().1;
    assert_eq!(PublicKey::from_value(&f[0]).unwrap(), r2g.keys.public());
    assert_eq!(f[1], eloc);
    assert_eq!(f[2], Value::Bytes(e2g.session_id().to_vec()));
    assert_eq!(
        f[3],
        Value::Bytes(e2g.remote_key.unwrap().side_id().to_vec())
    );
    assert_eq!(f[4], deposit[1]);
    e2g.remote_key.unwrap().verify_value(give, sig).unwrap();
}

#[test]
fn receiver_redeems_a_handoff_at_the_exporter() {
    let (net, node) = start();
    let eloc = my_location("exporter", 7);
    let elisten = net.listen(eloc.clone());
    let mut g2r = open(&net, &node, "gifter");
    let greeter = g2r.fetch(GREETER);
    let g2e_keys = KeyPair::generate().unwrap();
    let give = envelope(
        &g2e_keys,
        handoff_give(
            &g2r.remote_key.unwrap(),
            eloc.clone(),
            [7; 32],
            [8; 32],
            b"my-gift",
        ),
    );
    g2r.send(&rec(
        "op:deliver-only",
        vec![greeter, Value::List(vec![give.clone()])],
    ));
    // The node dials the exporter and withdraws the gift there.
    let mut e2r = elisten.accept();
    e2r.setup();
    let (_, args) = e2r.expect_to(&export(0));
    assert_eq!(args[0], sym("withdraw-gift"));
    let Some(("desc:sig-envelope", [receive, sig])) = args[1].as_record() else {
        panic!("{args:?}")
    };
    let f = receive.as_record().unwrap().1;
    assert_eq!(f[0], Value::Bytes(e2r.session_id().to_vec()));
    assert_eq!(
        f[1],
        Value::Bytes(e2r.remote_key.unwrap().side_id().to_vec())
    );
    assert_eq!(f[3], give);
    // Signed with the receiver's key of the gifter-receiver session.
    g2r.remote_key.unwrap().verify_value(receive, sig).unwrap();
}

#[test]
fn receiver_refuses_a_give_for_another_key() {
    let (net, node) = start();
    let mut g2r = open(&net, &node, "gifter");
    let echo = g2r.fetch(ECHO_GC);
    let stranger = KeyPair::generate().unwrap();
    let give = envelope(
        &stranger,
        handoff_give(
            &stranger.public(),
            my_location("x", 1),
            [7; 32],
            [8; 32],
            b"g",
        ),
    );
    let r = g2r.deliver(echo, vec![give], None);
    // The echo returns the promise the give became; it is broken.
    let res = g2r.resolution(r);
    assert_eq!(res[0], sym("fulfill"));
    let vow = res[1].as_list().unwrap()[0].clone();
    let p = vow.as_record().unwrap().1[0].as_int().unwrap() as u64;
    let l = g2r.next_import();
    g2r.send(&rec(
        "op:listen",
        vec![export(p), import_object(l), Value::Bool(false)],
    ));
    let res = g2r.resolution(l);
    assert_eq!(res[0], sym("break"));
    assert!(
        format!("{res:?}").contains("another receiver key"),
        "{res:?}"
    );
}

fn crossed(outbound_wins: bool) {
    let (net, node) = start();
    let mut main = open(&net, &node, "main");
    let enlivener = main.fetch(STURDYREF_ENLIVENER);
    let other_loc = my_location("other", 7);
    let other = net.listen(other_loc.clone());
    main.send(&rec(
        "op:deliver-only",
        vec![
            enlivener,
            Value::List(vec![rec(
                "ocapn-sturdyref",
                vec![other_loc.clone(), Value::Bytes(b"x".to_vec())],
            )]),
        ],
    ));
    // The node dials us…
    let mut inbound = other.accept();
    let their_hello = inbound.expect("op:start-session");
    let node_key = PublicKey::from_value(&their_hello.as_record().unwrap().1[1]).unwrap();
    // …while we dial it, with a key chosen so that the wanted side wins.
    let mut outbound = net.connect(&node, other_loc);
    loop {
        outbound.keys = KeyPair::generate().unwrap();
        let ours_lower = outbound.keys.public().side_id() < node_key.side_id();
        if ours_lower != outbound_wins {
            break;
        }
    }
    let h = outbound.hello("1.0");
    outbound.send(&h);
    // The connection whose initiator has the lower side ID is aborted, and the node's
    // fetch goes over the one that is left.
    let fetch = vec![sym("fetch"), Value::Bytes(b"x".to_vec())];
    if outbound_wins {
        inbound.expect("op:abort");
        assert!(inbound.recv().is_none(), "the losing connection stays open");
        assert_eq!(outbound.expect_to(&export(0)).1, fetch);
    } else {
        outbound.expect("op:abort");
        assert!(
            outbound.recv().is_none(),
            "the losing connection stays open"
        );
        let h = inbound.hello("1.0");
        inbound.send(&h);
        assert_eq!(inbound.expect_to(&export(0)).1, fetch);
    }
    assert_eq!(node.sessions_with("other"), 1);
}

#[test]
fn crossed_hellos_abort_the_inbound() {
    crossed(true);
}

#[test]
fn crossed_hellos_abort_the_outbound() {
    crossed(false);
}

// ---- three nodes ---------------------------------------------------------------------------

/// A (gifter) hands C (receiver) a reference to B's resolver object: C redeems it at B
/// and greets the resolver there, which (given "Hello" instead of 'fulfill/'break) breaks
/// B's promise, seen by A. With `deposit_late`, A's link to B is slow, so C's withdrawal
/// reaches B before A's deposit and must wait for it.
fn three_node_handoff(deposit_late: bool) {
    use gobs_ocapn_proto::captp::{SessionConfig, Term};
    use gobs_ocapn_proto::locator::Sturdyref;
    use std::time::Duration;

    let net = Net::new();
    let a = fixture_node(&net, "a", SessionConfig::default());
    let b = fixture_node(&net, "b", SessionConfig::default());
    let c = fixture_node(&net, "c", SessionConfig::default());
    let fixture = |n: &SimNode, swiss: &[u8]| Sturdyref {
        peer: n.locator().clone(),
        swiss: swiss.to_vec(),
    };
    let p = a.enliven(&fixture(&b, PROMISE_RESOLVER));
    let Some(Ok(Term::Ref(resolver_fixture))) = a.settled(p) else {
        panic!("{:?}", a.settled(p))
    };
    let q = a.send(resolver_fixture, vec![]);
    let Some(Ok(Term::List(pair))) = a.settled(q) else {
        panic!("{:?}", a.settled(q))
    };
    let (Term::Ref(vow), Term::Ref(resolver)) = (pair[0].clone(), pair[1].clone()) else {
        panic!("{pair:?}")
    };
    let g = a.enliven(&fixture(&c, GREETER));
    let Some(Ok(Term::Ref(greeter))) = a.settled(g) else {
        panic!("{:?}", a.settled(g))
    };
    let slow = Duration::from_secs(10);
    if deposit_late {
        let ab = net.link_between(&a, &b).unwrap();
        net.set_link_latency(ab, slow);
    }
    let start = net.elapsed();
    let outcome = a.with_core(|core| {
        let q = core.new_promise();
        core.settle_promise(q, Ok(Term::Ref(vow)));
        core.send(greeter, vec![Term::Ref(resolver)]);
        q
    });
    let Some(Err(Term::Data(Value::String(why)))) = a.settled(outcome) else {
        panic!("{:?}", a.settled(outcome))
    };
    assert!(
        why.contains("a resolver takes 'fulfill or 'break"),
        "C's greeting did not reach B's resolver: {why}"
    );
    let took = net.elapsed() - start;
    if deposit_late {
        assert!(
            took >= slow,
            "the deposit cannot have arrived sooner: {took:?}"
        );
    } else {
        assert_eq!(took, Duration::ZERO);
    }
    // C reached B directly, over a connection of its own.
    assert!(net.link_between(&c, &b).is_some());
    assert_eq!(b.sessions_with("c"), 1);
}

#[test]
fn a_three_node_handoff_reaches_the_exporter() {
    three_node_handoff(false);
}

#[test]
fn a_withdrawal_that_overtakes_its_deposit_waits_for_it() {
    three_node_handoff(true);
}
