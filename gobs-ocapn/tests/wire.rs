//! Wire-level conformance: a raw-Syrup peer against a node running the suite's fixtures,
//! covering the ground of the public OCapN test suite (which CI cannot fetch): session
//! start, abort, deliver / deliver-only, pipelining, listen, GC, handoffs in the three
//! roles, crossed hellos, and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn::captp::{KeyPair, PublicKey, session_id};
use gobs_ocapn::fixtures::*;
use gobs_ocapn::syrup::Value;

fn open(node: &TestNode, tag: &str) -> Peer {
    let mut p = Peer::connect(node.addr(), my_location(tag, 1));
    p.setup();
    p
}

#[test]
fn start_session_is_valid_and_signed() {
    let node = TestNode::start();
    let mut p = Peer::connect(node.addr(), my_location("a", 1));
    let theirs = p.setup();
    let f = theirs.as_record().unwrap().1;
    assert_eq!(f[0], Value::from("1.0"));
    assert_eq!(f[2], node.locator.to_value());
}

#[test]
fn wrong_version_is_aborted() {
    let node = TestNode::start();
    let mut p = Peer::connect(node.addr(), my_location("a", 1));
    let h = p.hello("invalid-version-number");
    p.send(&h);
    let abort = p.expect("op:abort");
    let reason = abort.as_record().unwrap().1[0].as_str().unwrap().to_owned();
    assert!(reason.contains("unsupported CapTP version"), "{reason}");
    assert!(p.recv().is_none(), "connection stays open after abort");
}

#[test]
fn bad_location_signature_is_aborted() {
    let node = TestNode::start();
    let mut p = Peer::connect(node.addr(), my_location("a", 1));
    let sig = p.keys.sign_value(&Value::from("i am invalid"));
    let h = rec(
        "op:start-session",
        vec![
            Value::from("1.0"),
            p.keys.public().to_value(),
            p.location.clone(),
            sig,
        ],
    );
    p.send(&h);
    let abort = p.expect("op:abort");
    assert!(format!("{abort:?}").contains("signature"), "{abort:?}");
}

#[test]
fn abort_before_setup_ends_the_connection() {
    let node = TestNode::start();
    let mut p = Peer::connect(node.addr(), my_location("a", 1));
    p.abort("test-abort-before-setup");
    let h = p.hello("1.0");
    p.send(&h);
    // Whatever the node had sent (its hello), the stream then ends; nothing answers.
    p.send(&rec(
        "op:deliver",
        vec![
            export(0),
            Value::List(vec![sym("fetch"), Value::Bytes(GREETER.to_vec())]),
            Value::Bool(false),
            import_object(1),
        ],
    ));
    while let Some(m) = p.recv() {
        assert_eq!(m.as_record().unwrap().0, "op:start-session", "got {m:?}");
    }
}

#[test]
fn deliver_only_to_greeter_greets() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let greeter = p.fetch(GREETER);
    let me = p.next_import();
    p.send(&rec(
        "op:deliver-only",
        vec![greeter, Value::List(vec![import_object(me)])],
    ));
    let (_, args) = p.expect_to(&export(me));
    assert_eq!(args, vec![Value::from("Hello")]);
}

#[test]
fn deliver_with_resolver_answers() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let echo = p.fetch(ECHO_GC);
    let args = vec![
        Value::from("foo"),
        int(1),
        Value::Bool(false),
        Value::Bytes(b"bar".to_vec()),
        Value::List(vec![Value::from("baz")]),
    ];
    let r = p.deliver(echo, args.clone(), None);
    assert_eq!(p.resolution(r), vec![sym("fulfill"), Value::List(args)]);
}

#[test]
fn pipelining_through_answers() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let a0 = p.next_answer();
    p.deliver(
        export(0),
        vec![sym("fetch"), Value::Bytes(CAR_FACTORY_BUILDER.to_vec())],
        Some(a0),
    );
    let a1 = p.next_answer();
    p.deliver(answer(a0), vec![], Some(a1));
    let a2 = p.next_answer();
    p.deliver(
        answer(a1),
        vec![Value::List(vec![sym("red"), sym("zoomracer")])],
        Some(a2),
    );
    let r = p.deliver(answer(a2), vec![], None);
    assert_eq!(
        p.resolution(r),
        vec![
            sym("fulfill"),
            Value::from("Vroom! I am a red zoomracer car!")
        ]
    );
}

#[test]
fn pipelining_through_a_broken_promise_breaks() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let a0 = p.next_answer();
    p.deliver(
        export(0),
        vec![sym("fetch"), Value::Bytes(CAR_FACTORY_BUILDER.to_vec())],
        Some(a0),
    );
    let a1 = p.next_answer();
    p.deliver(answer(a0), vec![], Some(a1));
    let a2 = p.next_answer();
    p.deliver(
        answer(a1),
        vec![Value::List(vec![int(1), int(2), int(3)])],
        Some(a2),
    );
    let r = p.deliver(answer(a2), vec![], None);
    let res = p.resolution(r);
    assert_eq!(res[0], sym("break"));
    assert_eq!(res.len(), 2);
}

#[test]
fn listen_then_fulfill_then_break_and_listen_after_settling() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    // Listen, then fulfill.
    let (vow, resolver) = p.promise_pair();
    let l = p.next_import();
    p.send(&rec(
        "op:listen",
        vec![vow, import_object(l), Value::Bool(false)],
    ));
    p.send(&rec(
        "op:deliver-only",
        vec![resolver, Value::List(vec![sym("fulfill"), sym("ok")])],
    ));
    assert_eq!(p.resolution(l), vec![sym("fulfill"), sym("ok")]);
    // Listen, then break.
    let (vow, resolver) = p.promise_pair();
    let l = p.next_import();
    p.send(&rec(
        "op:listen",
        vec![vow, import_object(l), Value::Bool(false)],
    ));
    p.send(&rec(
        "op:deliver-only",
        vec![resolver, Value::List(vec![sym("break"), sym("oh-no")])],
    ));
    assert_eq!(p.resolution(l), vec![sym("break"), sym("oh-no")]);
    // Settle, then listen (spec dialect: two-field op:listen).
    let (vow, resolver) = p.promise_pair();
    p.send(&rec(
        "op:deliver-only",
        vec![resolver, Value::List(vec![sym("fulfill"), sym("ok")])],
    ));
    let l = p.next_import();
    p.send(&rec("op:listen", vec![vow, import_object(l)]));
    assert_eq!(p.resolution(l), vec![sym("fulfill"), sym("ok")]);
}

#[test]
fn gc_export_counts_every_reference_sent() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let echo = p.fetch(ECHO_GC);
    // One reference.
    let obj = p.next_import();
    p.send(&rec(
        "op:deliver-only",
        vec![echo.clone(), Value::List(vec![import_object(obj)])],
    ));
    assert_eq!(p.gc_export_total(obj, 1), 1);
    // Four in one message.
    let obj = p.next_import();
    p.send(&rec(
        "op:deliver-only",
        vec![echo.clone(), Value::List(vec![import_object(obj); 4])],
    ));
    assert_eq!(p.gc_export_total(obj, 4), 4);
    // Four in four messages.
    let obj = p.next_import();
    for _ in 0..4 {
        p.send(&rec(
            "op:deliver-only",
            vec![echo.clone(), Value::List(vec![import_object(obj)])],
        ));
    }
    assert_eq!(p.gc_export_total(obj, 4), 4);
}

#[test]
fn gc_answer_follows_a_settled_question() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let greeter = p.fetch(GREETER);
    let me = p.next_import();
    p.send(&rec(
        "op:deliver-only",
        vec![greeter, Value::List(vec![import_object(me)])],
    ));
    let (greeting, _) = p.expect_to(&export(me));
    let f = greeting.as_record().unwrap().1.to_vec();
    assert_eq!(
        greeting.as_record().unwrap().0,
        "op:deliver",
        "the greeting wants an answer"
    );
    let answer_pos = f[2].clone();
    let resolver = export(f[3].as_record().unwrap().1[0].as_int().unwrap() as u64);
    p.send(&rec(
        "op:deliver-only",
        vec![
            resolver,
            Value::List(vec![sym("fulfill"), Value::from("Hello")]),
        ],
    ));
    let gc = p.expect("op:gc-answer");
    assert_eq!(gc.as_record().unwrap().1[0], Value::List(vec![answer_pos]));
}

#[test]
fn exports_are_released_by_gc_export() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let echo = p.fetch(ECHO_GC);
    // The echo's export has been sent once; releasing it twice is a forged count.
    let pos = echo.as_record().unwrap().1[0].clone();
    p.send(&rec(
        "op:gc-export",
        vec![Value::List(vec![pos.clone()]), Value::List(vec![int(1)])],
    ));
    // Now the position is gone: using it is an unknown position.
    p.send(&rec("op:deliver-only", vec![echo, Value::List(vec![])]));
    let abort = p.expect("op:abort");
    assert!(format!("{abort:?}").contains("does not exist"), "{abort:?}");
}

fn hostile(frame: &[u8], reason_has: &str) {
    let node = TestNode::start();
    let mut bystander = open(&node, "bystander");
    let echo = bystander.fetch(ECHO_GC);
    let mut p = open(&node, "hostile");
    p.send_raw(frame);
    let abort = p.expect("op:abort");
    let reason = abort.as_record().unwrap().1[0].as_str().unwrap().to_owned();
    assert!(
        reason.contains(reason_has),
        "reason {reason:?} lacks {reason_has:?}"
    );
    // Every other session is untouched.
    let r = bystander.deliver(echo, vec![int(7)], None);
    assert_eq!(
        bystander.resolution(r),
        vec![sym("fulfill"), Value::List(vec![int(7)])]
    );
}

#[test]
fn hostile_malformed_frame() {
    hostile(b"<10'op:deliver]]]", "malformed frame");
}

#[test]
fn hostile_not_a_record() {
    hostile(b"[1+2+]", "a CapTP message is a record");
}

#[test]
fn hostile_unknown_op() {
    hostile(b"<13'op:frobnicate>", "unknown operation op:frobnicate");
}

#[test]
fn hostile_forged_export_position() {
    hostile(
        &gobs_ocapn::syrup::encode(&rec(
            "op:deliver-only",
            vec![export(999), Value::List(vec![])],
        )),
        "desc:export 999 does not exist",
    );
}

#[test]
fn hostile_forged_answer_position() {
    hostile(
        &gobs_ocapn::syrup::encode(&rec(
            "op:deliver-only",
            vec![answer(5), Value::List(vec![])],
        )),
        "desc:answer 5 does not exist",
    );
}

#[test]
fn hostile_wrong_arity() {
    hostile(b"<10'op:deliver>", "op:deliver takes 4 fields");
}

#[test]
fn hostile_negative_position() {
    hostile(
        &gobs_ocapn::syrup::encode(&rec(
            "op:deliver-only",
            vec![
                rec("desc:export", vec![Value::Int(-1)]),
                Value::List(vec![]),
            ],
        )),
        "not a non-negative integer",
    );
}

#[test]
fn hostile_too_deep() {
    let mut frame = b"<15'op:deliver-only<11'desc:export0+>[".to_vec();
    frame.extend(std::iter::repeat_n(b'[', 100));
    hostile(&frame, "nesting depth");
}

#[test]
fn hostile_oversized_string() {
    hostile(b"<8'op:abort999999999\"", "byte string length");
}

#[test]
fn hostile_oversized_frame() {
    // Many small strings: each within limits, the frame as a whole too large.
    let mut frame = b"<15'op:deliver-only<11'desc:export0+>[".to_vec();
    let chunk = format!("65536\"{}", "x".repeat(65536));
    while frame.len() < 5 << 20 {
        frame.extend_from_slice(chunk.as_bytes());
    }
    hostile(&frame, "frame larger than");
}

#[test]
fn hostile_second_hello() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let h = p.hello("1.0");
    p.send(&h);
    let abort = p.expect("op:abort");
    assert!(
        format!("{abort:?}").contains("op:start-session sent twice"),
        "{abort:?}"
    );
}

#[test]
fn fetch_of_an_unknown_swiss_number_breaks() {
    let node = TestNode::start();
    let mut p = open(&node, "a");
    let r = p.deliver(
        export(0),
        vec![sym("fetch"), Value::Bytes(b"no such thing".to_vec())],
        None,
    );
    let res = p.resolution(r);
    assert_eq!(res[0], sym("break"));
}

// ---- third-party handoffs -----------------------------------------------------------------

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
    node: TestNode,
    g2e: Peer,
    r2e: Peer,
    r2g_keys: KeyPair,
    greeter: Value,
}

fn exporter_setup() -> ExporterSetup {
    let node = TestNode::start();
    let mut g2e = open(&node, "gifter");
    let r2e = open(&node, "receiver");
    let greeter = g2e.fetch(GREETER);
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
            self.node.locator.to_value(),
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
            s.node.locator.to_value(),
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
    let node = TestNode::start();
    let (elisten, eport) = listener();
    let eloc = my_location("exporter", eport);
    // The exporter has a session with the node (it dialled in).
    let mut e2g = Peer::connect(node.addr(), eloc.clone());
    e2g.setup();
    let mut r2g = open(&node, "receiver");
    drop(elisten);
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
    let node = TestNode::start();
    let (elisten, eport) = listener();
    let eloc = my_location("exporter", eport);
    let mut g2r = open(&node, "gifter");
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
    let stream = accept_within(&elisten);
    let mut e2r = Peer::over(stream, eloc);
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
    let node = TestNode::start();
    let mut g2r = open(&node, "gifter");
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

// ---- crossed hellos -----------------------------------------------------------------------

fn crossed(outbound_wins: bool) {
    let node = TestNode::start();
    let mut main = open(&node, "main");
    let enlivener = main.fetch(STURDYREF_ENLIVENER);
    let (other, port) = listener();
    let other_loc = my_location("other", port);
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
    let stream = accept_within(&other);
    let mut inbound = Peer::over(stream, other_loc.clone());
    let their_hello = inbound.expect("op:start-session");
    let node_key = PublicKey::from_value(&their_hello.as_record().unwrap().1[1]).unwrap();
    // …while we dial it, with a key chosen so that the wanted side wins.
    let mut outbound = Peer::connect(node.addr(), other_loc);
    loop {
        outbound.keys = KeyPair::generate().unwrap();
        let ours_lower = outbound.keys.public().side_id() < node_key.side_id();
        if ours_lower != outbound_wins {
            break;
        }
    }
    let h = outbound.hello("1.0");
    outbound.send(&h);
    // The connection whose initiator has the lower side ID is aborted.
    if outbound_wins {
        inbound.expect("op:abort");
    } else {
        outbound.expect("op:abort");
    }
    let _ = session_id;
}

#[test]
fn crossed_hellos_abort_the_inbound() {
    crossed(true);
}

#[test]
fn crossed_hellos_abort_the_outbound() {
    crossed(false);
}

#[test]
fn the_spec_dialect_on_the_wire() {
    let node = TestNode::start_with(gobs_ocapn::captp::SessionConfig {
        dialect: gobs_ocapn::captp::Dialect::Spec,
        ..Default::default()
    });
    let mut p = open(&node, "spec");
    let greeter = p.fetch(GREETER);
    let me = p.next_import();
    // The spec's deliver-only: op:deliver with answer-pos and resolve-me both false.
    p.send(&rec(
        "op:deliver",
        vec![
            greeter,
            Value::List(vec![import_object(me)]),
            Value::Bool(false),
            Value::Bool(false),
        ],
    ));
    let (greeting, args) = p.expect_to(&export(me));
    assert_eq!(args, vec![Value::from("Hello")]);
    let f = greeting.as_record().unwrap().1.to_vec();
    assert_eq!(f[2], int(1), "the spec numbers answers from 1");
    let resolver = export(f[3].as_record().unwrap().1[0].as_int().unwrap() as u64);
    p.send(&rec(
        "op:deliver",
        vec![
            resolver,
            Value::List(vec![sym("fulfill"), Value::from("Hello")]),
            Value::Bool(false),
            Value::Bool(false),
        ],
    ));
    // The answer is released, and so is the node's import of our object, with the
    // spec's plural labels (in either order).
    let (mut answers, mut exports) = (None, None);
    while answers.is_none() || exports.is_none() {
        let m = p.recv().expect("connection ended");
        match m.as_record() {
            Some(("op:gc-answers", [a])) => answers = Some(a.clone()),
            Some(("op:gc-exports", [e, _])) => exports = Some(e.clone()),
            Some((l, _)) => assert!(!l.starts_with("op:gc-"), "singular GC label {l}"),
            None => {}
        }
    }
    assert_eq!(answers, Some(Value::List(vec![int(1)])));
    assert_eq!(exports, Some(Value::List(vec![int(me)])));
}
