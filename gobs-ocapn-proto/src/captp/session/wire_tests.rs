//! The messages written straight to the output ([`super::outgoing`]) are the very bytes
//! their values encode to, in both label sets.
#![allow(clippy::expect_used)]

use crate::captp::{
    CaptpError, ConnId, Dialect, KeyPair, LocalRef, ObjId, OutTarget, RemoteRef, Session,
    SessionConfig, Term,
};
use crate::locator::{PeerLocator, TCP_TESTING_ONLY};
use crate::syrup::{self, Value};

fn session(conn: u64, dialect: Dialect) -> Session {
    let config = SessionConfig {
        dialect,
        defer_gc_answers: true,
        ..SessionConfig::default()
    };
    let boot = LocalRef {
        id: ObjId(0),
        promise: false,
    };
    let keys = KeyPair::generate().expect("randomness");
    let peer = PeerLocator::new(TCP_TESTING_ONLY, "x");
    Session::new(ConnId(conn), config, keys, &peer, boot)
}

/// Two sessions open against each other; the first is returned with nothing written.
fn open_pair(dialect: Dialect) -> (Session, Session) {
    let (mut a, mut b) = (session(1, dialect), session(2, dialect));
    let (oa, ob) = (a.take_output(), b.take_output());
    b.receive(&oa);
    a.receive(&ob);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    assert!(a.is_open() && b.is_open());
    (a, b)
}

fn no_tp(_: &RemoteRef) -> Result<Value, CaptpError> {
    Err(CaptpError::Protocol("no third party here".into()))
}

/// Decodes every frame of `out`, checking that each re-encodes to its own bytes (the
/// encoding is canonical, so these are the bytes the value path writes).
fn frames(out: &[u8]) -> Vec<Value> {
    let mut rest = out;
    let mut values = Vec::new();
    while !rest.is_empty() {
        let (v, used) =
            syrup::decode_prefix(rest, &syrup::Limits::default()).expect("a whole frame");
        assert_eq!(syrup::encode(&v), rest[..used], "bytes of {v:?}");
        values.push(v);
        rest = &rest[used..];
    }
    values
}

fn rec(label: &str, fields: Vec<Value>) -> Value {
    Value::record(label, fields)
}

#[test]
fn a_deliver_and_the_answers_let_go_before_it_are_their_values_bytes() {
    for (dialect, gc_label) in [
        (Dialect::Suite, "op:gc-answer"),
        (Dialect::Spec, "op:gc-answers"),
    ] {
        let (mut a, _b) = open_pair(dialect);
        // Two answers let go of, sent with the next message.
        a.release_answer(3).expect("open");
        a.release_answer(u64::MAX).expect("open");
        let resolver = LocalRef {
            id: ObjId(9),
            promise: true,
        };
        let args = [Term::sym("echo"), Term::Data(Value::from(42u8))];
        let answer = a
            .send_deliver(
                OutTarget::Export(7),
                &args,
                true,
                Some(resolver),
                &mut no_tp,
            )
            .expect("open")
            .expect("an answer position");
        let got = frames(&a.take_output());
        let [gc3, gc_max, deliver] = got.as_slice() else {
            panic!("three frames: {got:?}")
        };
        assert_eq!(*gc3, rec(gc_label, vec![Value::List(vec![3u8.into()])]));
        assert_eq!(
            *gc_max,
            rec(gc_label, vec![Value::List(vec![u64::MAX.into()])])
        );
        let (label, fields) = deliver.as_record().expect("a record");
        assert_eq!(label, "op:deliver");
        assert_eq!(fields[0], rec("desc:export", vec![7u8.into()]));
        assert_eq!(
            fields[1],
            Value::List(vec![Value::symbol("echo"), 42u8.into()])
        );
        assert_eq!(fields[2], Value::from(answer));
        assert!(fields[3].as_record().is_some(), "the resolver: {fields:?}");
    }
}

#[test]
fn a_deliver_only_and_a_deliver_without_answer_are_their_values_bytes() {
    for dialect in [Dialect::Suite, Dialect::Spec] {
        let (mut a, _b) = open_pair(dialect);
        let args = [Term::sym("fulfill"), Term::Data(Value::from("ok"))];
        a.send_deliver_only(OutTarget::Answer(12), &args, &mut no_tp)
            .expect("open");
        a.send_deliver(OutTarget::Export(0), &args, false, None, &mut no_tp)
            .expect("open");
        let to = rec("desc:answer", vec![12u8.into()]);
        let list = Value::List(vec![Value::symbol("fulfill"), Value::from("ok")]);
        let no = Value::Bool(false);
        let only = match dialect {
            Dialect::Suite => rec("op:deliver-only", vec![to, list.clone()]),
            _ => rec("op:deliver", vec![to, list.clone(), no.clone(), no.clone()]),
        };
        let export0 = rec("desc:export", vec![0u8.into()]);
        let plain = rec("op:deliver", vec![export0, list, no.clone(), no]);
        assert_eq!(frames(&a.take_output()), [only, plain]);
    }
}

#[test]
fn arguments_written_straight_are_the_bytes_of_their_exported_values() {
    let local = |id, promise| {
        Term::local(LocalRef {
            id: ObjId(id),
            promise,
        })
    };
    // Every kind of term: the ones a far call has are written without building a value
    // (data, lists, this node's objects and promises), the others are built and encoded.
    let args = [
        Term::sym("call"),
        Term::List(vec![Term::Data(Value::from(-3)), local(4, false)]),
        local(5, true),
        local(4, false),
        Term::Record(
            Box::new(Term::sym("point")),
            vec![Term::Data(1u8.into()), local(6, false)],
        ),
        Term::Dict(vec![
            (Term::str("b"), local(7, true)),
            (Term::str("a"), Term::str("x")),
        ]),
    ];
    for dialect in [Dialect::Suite, Dialect::Spec] {
        let (mut a, _) = open_pair(dialect);
        // A twin in the same state exports the same objects at the same positions.
        let (mut twin, _) = open_pair(dialect);
        a.send_deliver_only(OutTarget::Answer(12), &args, &mut no_tp)
            .expect("open");
        let list = Value::List(
            args.iter()
                .map(|t| twin.export_term(t, &mut no_tp).expect("exported"))
                .collect(),
        );
        let to = rec("desc:answer", vec![12u8.into()]);
        let no = Value::Bool(false);
        let expected = match dialect {
            Dialect::Suite => rec("op:deliver-only", vec![to, list]),
            _ => rec("op:deliver", vec![to, list, no.clone(), no]),
        };
        assert_eq!(frames(&a.take_output()), [expected]);
    }
}

#[test]
fn imports_let_go_of_are_their_values_bytes() {
    for (dialect, label) in [
        (Dialect::Suite, "op:gc-export"),
        (Dialect::Spec, "op:gc-exports"),
    ] {
        let (mut a, mut b) = open_pair(dialect);
        let object = |id, promise| {
            Term::local(LocalRef {
                id: ObjId(id),
                promise,
            })
        };
        // The peer passes two of its objects, one of them twice: `a` imports them.
        let args = [object(5, false), object(6, true), object(5, false)];
        b.send_deliver(OutTarget::Export(0), &args, false, None, &mut no_tp)
            .expect("open");
        a.receive(&b.take_output());
        let Some(crate::captp::Event::Deliver { args, .. }) = a.poll_event() else {
            panic!("a delivery")
        };
        let mut positions: Vec<u64> = args
            .iter()
            .filter_map(|t| match t {
                Term::Ref(crate::captp::CapRef::Remote(r)) => Some(r.position()),
                _ => None,
            })
            .collect();
        positions.sort_unstable();
        positions.dedup();
        drop(args);
        assert_eq!(a.release_dropped(&positions), 2);
        let lists = vec![
            Value::List(positions.iter().map(|&p| p.into()).collect()),
            Value::List(vec![2u8.into(), 1u8.into()]),
        ];
        assert_eq!(frames(&a.take_output()), [rec(label, lists)]);
    }
}
