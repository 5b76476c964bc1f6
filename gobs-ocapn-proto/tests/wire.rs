//! Wire-level conformance: a raw-Syrup peer against a node running the suite's fixtures,
//! covering the ground of the public OCapN test suite (which CI cannot fetch): session
//! start, abort, deliver / deliver-only, pipelining, listen, GC, handoffs in the three
//! roles, crossed hellos, and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn_proto::fixtures::*;
use gobs_ocapn_proto::syrup::Value;

#[test]
fn start_session_is_valid_and_signed() {
    let (net, node) = start();
    let mut p = net.connect(&node, my_location("a", 1));
    let theirs = p.setup();
    let f = theirs.as_record().unwrap().1;
    assert_eq!(f[0], Value::from("1.0"));
    assert_eq!(f[2], node.locator().to_value());
}

#[test]
fn wrong_version_is_aborted() {
    let (net, node) = start();
    let mut p = net.connect(&node, my_location("a", 1));
    let h = p.hello("invalid-version-number");
    p.send(&h);
    let abort = p.expect("op:abort");
    let reason = abort.as_record().unwrap().1[0].as_str().unwrap().to_owned();
    assert!(reason.contains("unsupported CapTP version"), "{reason}");
    assert!(p.recv().is_none(), "connection stays open after abort");
}

#[test]
fn bad_location_signature_is_aborted() {
    let (net, node) = start();
    let mut p = net.connect(&node, my_location("a", 1));
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
    let (net, node) = start();
    let mut p = net.connect(&node, my_location("a", 1));
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
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
    let greeter = p.fetch(GREETER);
    assert_eq!(greeted(&mut p, greeter).1, vec![Value::from("Hello")]);
}

#[test]
fn deliver_with_resolver_answers() {
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
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

/// Fetches the car-factory builder, asks it for a factory, the factory for a car from
/// `spec`, and the car to drive: all pipelined, sent before any answer. The resolution.
fn pipelined_car(spec: Value) -> Vec<Value> {
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
    let a0 = p.next_answer();
    p.deliver(
        export(0),
        vec![sym("fetch"), Value::Bytes(CAR_FACTORY_BUILDER.to_vec())],
        Some(a0),
    );
    let a1 = p.next_answer();
    p.deliver(answer(a0), vec![], Some(a1));
    let a2 = p.next_answer();
    p.deliver(answer(a1), vec![spec], Some(a2));
    let r = p.deliver(answer(a2), vec![], None);
    p.resolution(r)
}

#[test]
fn pipelining_through_answers() {
    assert_eq!(
        pipelined_car(Value::List(vec![sym("red"), sym("zoomracer")])),
        vec![
            sym("fulfill"),
            Value::from("Vroom! I am a red zoomracer car!")
        ]
    );
}

#[test]
fn pipelining_through_a_broken_promise_breaks() {
    let res = pipelined_car(Value::List(vec![int(1), int(2), int(3)]));
    assert_eq!(res[0], sym("break"));
    assert_eq!(res.len(), 2);
    assert!(
        format!("{res:?}").contains("a car is [color model]"),
        "the car factory's error: {res:?}"
    );
}

/// A fresh promise of the node's, settled with `[how, value]` and listened to: before it
/// settles with `listen_first`, after otherwise (then with the spec's two-field
/// `op:listen`). What the listener hears.
fn listened(p: &mut Peer, how: &str, value: Value, listen_first: bool) -> Vec<Value> {
    let (vow, resolver) = p.promise_pair();
    let settle = rec(
        "op:deliver-only",
        vec![resolver, Value::List(vec![sym(how), value])],
    );
    let l = p.next_import();
    if listen_first {
        p.send(&rec(
            "op:listen",
            vec![vow, import_object(l), Value::Bool(false)],
        ));
        p.send(&settle);
    } else {
        p.send(&settle);
        p.send(&rec("op:listen", vec![vow, import_object(l)]));
    }
    p.resolution(l)
}

#[test]
fn listen_then_fulfill_then_break_and_listen_after_settling() {
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
    let heard = listened(&mut p, "fulfill", sym("ok"), true);
    assert_eq!(heard, vec![sym("fulfill"), sym("ok")]);
    let heard = listened(&mut p, "break", sym("oh-no"), true);
    assert_eq!(heard, vec![sym("break"), sym("oh-no")]);
    let heard = listened(&mut p, "fulfill", sym("ok"), false);
    assert_eq!(heard, vec![sym("fulfill"), sym("ok")]);
}

#[test]
fn gc_export_counts_every_reference_sent() {
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
    let echo = p.fetch(ECHO_GC);
    // One reference.
    let obj = p.next_import();
    p.send(&rec(
        "op:deliver-only",
        vec![echo.clone(), Value::List(vec![import_object(obj)])],
    ));
    assert_eq!(p.gc_export_total(obj), 1);
    // Four in one message.
    let obj = p.next_import();
    p.send(&rec(
        "op:deliver-only",
        vec![echo.clone(), Value::List(vec![import_object(obj); 4])],
    ));
    assert_eq!(p.gc_export_total(obj), 4);
    // Four in four messages.
    let obj = p.next_import();
    for _ in 0..4 {
        p.send(&rec(
            "op:deliver-only",
            vec![echo.clone(), Value::List(vec![import_object(obj)])],
        ));
    }
    assert_eq!(p.gc_export_total(obj), 4);
}

#[test]
fn gc_answer_follows_a_settled_question() {
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
    let greeter = p.fetch(GREETER);
    let (greeting, _) = greeted(&mut p, greeter);
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
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
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
    let (net, node) = start();
    let mut bystander = open(&net, &node, "bystander");
    let echo = bystander.fetch(ECHO_GC);
    let mut p = open(&net, &node, "hostile");
    p.send_raw(frame);
    let abort = p.expect("op:abort");
    let reason = abort.as_record().unwrap().1[0].as_str().unwrap().to_owned();
    assert!(
        reason.contains(reason_has),
        "reason {reason:?} lacks {reason_has:?}"
    );
    assert!(
        p.recv().is_none(),
        "the connection stays open after the abort"
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
        &gobs_ocapn_proto::syrup::encode(&rec(
            "op:deliver-only",
            vec![export(999), Value::List(vec![])],
        )),
        "desc:export 999 does not exist",
    );
}

#[test]
fn hostile_forged_answer_position() {
    hostile(
        &gobs_ocapn_proto::syrup::encode(&rec(
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
        &gobs_ocapn_proto::syrup::encode(&rec(
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
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
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
    let (net, node) = start();
    let mut p = open(&net, &node, "a");
    let r = p.deliver(
        export(0),
        vec![sym("fetch"), Value::Bytes(b"no such thing".to_vec())],
        None,
    );
    let res = p.resolution(r);
    assert_eq!(res[0], sym("break"));
}

#[test]
fn the_spec_dialect_on_the_wire() {
    let (net, node) = start_with(gobs_ocapn_proto::captp::SessionConfig {
        dialect: gobs_ocapn_proto::captp::Dialect::Spec,
        ..Default::default()
    });
    let mut p = open(&net, &node, "spec");
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
