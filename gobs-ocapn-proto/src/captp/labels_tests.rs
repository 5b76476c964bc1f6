//! The default session learns which labels its peer speaks (see [`super::Dialect`]).
#![allow(clippy::expect_used)]

use super::*;
use crate::locator::{PeerLocator, TCP_TESTING_ONLY};
use crate::syrup::{self, Value};

const BOOT: LocalRef = LocalRef {
    id: ObjId(0),
    promise: false,
};

fn session(conn: u64, transport: &str, dialect: Dialect) -> Session {
    let config = SessionConfig {
        dialect,
        ..SessionConfig::default()
    };
    let keys = KeyPair::generate().expect("randomness");
    Session::new(
        ConnId(conn),
        config,
        keys,
        &PeerLocator::new(transport, "x"),
        BOOT,
    )
}

/// Opens `a` and `b` against each other.
fn open(a: &mut Session, b: &mut Session) {
    let (oa, ob) = (a.take_output(), b.take_output());
    b.receive(&oa);
    a.receive(&ob);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    assert!(a.is_open() && b.is_open());
}

fn no_tp(_: &RemoteRef) -> Result<Value, CaptpError> {
    Err(CaptpError::Protocol("no third party here".into()))
}

/// The label of what `s` writes for a message that wants no answer.
fn deliver_only_label(s: &mut Session) -> String {
    s.send_deliver_only(OutTarget::Export(0), &[Term::sym("x")], &mut no_tp)
        .expect("open");
    let out = s.take_output();
    let v = syrup::decode(&out).expect("one frame");
    v.as_record().expect("a record").0.to_owned()
}

#[test]
fn frames_tell_which_labels_their_sender_speaks() {
    let d = |label: &str, fields: Vec<Value>| Value::record(label, fields);
    let to = || d("desc:export", vec![Value::from(1u8)]);
    assert_eq!(
        labels_of(&d("op:deliver-only", vec![to(), Value::List(vec![])])),
        Some(Labels::Suite)
    );
    assert_eq!(
        labels_of(&d("op:gc-answer", vec![Value::List(vec![])])),
        Some(Labels::Suite)
    );
    assert_eq!(
        labels_of(&d("op:gc-exports", vec![])),
        Some(Labels::Current)
    );
    let no_answer = d(
        "op:deliver",
        vec![
            to(),
            Value::List(vec![]),
            Value::Bool(false),
            Value::Bool(false),
        ],
    );
    assert_eq!(labels_of(&no_answer), Some(Labels::Current));
    let with_answer = d(
        "op:deliver",
        vec![to(), Value::List(vec![]), Value::from(1u8), to()],
    );
    assert_eq!(labels_of(&with_answer), None, "both sides write this one");
}

#[test]
fn a_session_writes_current_labels_until_its_peer_uses_the_suites() {
    let mut a = session(1, "tcp-tls", Dialect::Learn);
    let mut b = session(2, "tcp-tls", Dialect::Suite);
    open(&mut a, &mut b);
    assert_eq!(a.labels(), Labels::Current);
    assert_eq!(deliver_only_label(&mut a), "op:deliver");
    // b writes op:deliver-only: from then on a writes the suite's labels to it.
    let out = {
        b.send_deliver_only(OutTarget::Export(0), &[Term::sym("y")], &mut no_tp)
            .expect("open");
        b.take_output()
    };
    a.receive(&out);
    assert!(matches!(a.poll_event(), Some(Event::Deliver { .. })));
    assert_eq!(a.labels(), Labels::Suite);
    assert_eq!(deliver_only_label(&mut a), "op:deliver-only");
}

#[test]
fn a_peer_on_the_suites_netlayer_is_written_the_suites_labels_first() {
    let mut a = session(1, TCP_TESTING_ONLY, Dialect::Learn);
    let mut b = session(2, TCP_TESTING_ONLY, Dialect::Spec);
    open(&mut a, &mut b);
    assert_eq!(a.labels(), Labels::Suite);
    // Until the peer shows otherwise: b writes op:deliver … #f #f.
    let out = {
        b.send_deliver_only(OutTarget::Export(0), &[Term::sym("y")], &mut no_tp)
            .expect("open");
        b.take_output()
    };
    a.receive(&out);
    assert!(matches!(a.poll_event(), Some(Event::Deliver { .. })));
    assert_eq!(a.labels(), Labels::Current);
    // A configured dialect is kept whatever the peer writes.
    assert_eq!(b.labels(), Labels::Current);
}
