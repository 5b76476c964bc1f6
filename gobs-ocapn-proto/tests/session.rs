//! The CapTP session as a pure state machine: two sessions joined in memory
//! ([`SessionPair`]), no sockets, no clock — and arbitrary bytes fed to one never make it
//! panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_ocapn_proto::captp::{
    CapRef, CaptpError, Dialect, Event, LocalRef, MAX_DEFERRED_GC_ANSWERS, ObjId, OutTarget,
    RemoteRef, SessionConfig, Term, session_id,
};
use gobs_ocapn_proto::syrup::{self, Value};
use gobs_ocapn_proto::testing::{BOOTSTRAP as BOOT, SessionPair};
use proptest::prelude::*;

fn no_tp(_: &RemoteRef) -> Result<Value, CaptpError> {
    panic!("no third party in these tests")
}

#[test]
fn hellos_open_both_sides_with_one_session_id() {
    let p = SessionPair::opened(Dialect::Suite);
    assert!(p.a.is_open() && p.b.is_open());
    assert_eq!(p.a.id(), p.b.id());
    assert_eq!(
        p.a.id().unwrap(),
        session_id(&p.a.keys().public(), &p.b.keys().public())
    );
    assert_eq!(p.a.remote_location().unwrap().0.designator, "b");
}

#[test]
fn deliver_reaches_the_bootstrap_and_imports_are_counted_for_gc() {
    let mut p = SessionPair::opened(Dialect::Suite);
    let obj = LocalRef {
        id: ObjId(7),
        promise: false,
    };
    let args = vec![Term::sym("fetch"), Term::local(obj), Term::local(obj)];
    let answer =
        p.a.send_deliver(OutTarget::Export(0), &args, true, None, &mut no_tp)
            .unwrap();
    assert_eq!(
        answer,
        Some(0),
        "the suite's dialect numbers answers from 0"
    );
    let (_, eb) = p.pump();
    let [
        Event::Deliver {
            target,
            args,
            answer_pos,
            resolve_me,
        },
    ] = eb.as_slice()
    else {
        panic!("{eb:?}")
    };
    assert_eq!(*target, BOOT);
    assert_eq!(*answer_pos, Some(0));
    assert!(resolve_me.is_none());
    let (Term::Ref(CapRef::Remote(r1)), Term::Ref(CapRef::Remote(r2))) = (&args[1], &args[2])
    else {
        panic!("{args:?}")
    };
    assert_eq!(r1, r2, "one import, sent twice");
    assert_eq!(p.b.import_count(), 1);
    drop(eb);
    // Both references dropped: one op:gc-export with a wire delta of 2.
    assert_eq!(p.b.collect_garbage(), 1);
    let out = p.b.take_output();
    assert_eq!(
        syrup::decode(&out).unwrap(),
        Value::record(
            "op:gc-export",
            vec![
                Value::List(vec![1u64.into()]),
                Value::List(vec![2u64.into()])
            ]
        )
    );
    // The exporter releases the object when the count reaches zero.
    p.a.receive(&out);
    assert!(matches!(p.a.poll_event(), Some(Event::ExportReleased(r)) if r == obj));
    assert_eq!(p.a.export_count(), 0);
}

#[test]
fn the_spec_dialect_writes_the_spec_names() {
    let mut p = SessionPair::opened(Dialect::Spec);
    p.a.send_deliver_only(OutTarget::Export(0), &[Term::sym("x")], &mut no_tp)
        .unwrap();
    let out = p.a.take_output();
    assert_eq!(
        syrup::decode(&out).unwrap().as_record().unwrap().0,
        "op:deliver",
        "no op:deliver-only in the spec"
    );
    p.b.receive(&out);
    assert!(matches!(
        p.b.poll_event(),
        Some(Event::Deliver {
            answer_pos: None,
            resolve_me: None,
            ..
        })
    ));
    assert_eq!(
        p.a.send_deliver(OutTarget::Export(0), &[], true, None, &mut no_tp)
            .unwrap(),
        Some(1),
        "the spec numbers answers from 1"
    );
    p.a.send_gc_answer(1).unwrap();
    let out = p.a.take_output();
    let (_, used) = syrup::decode_prefix(&out, &Default::default()).unwrap();
    let gc = syrup::decode(&out[used..]).unwrap();
    assert_eq!(gc.as_record().unwrap().0, "op:gc-answers");
}

/// The labels of the frames in `out`, in order.
fn labels(out: &[u8]) -> Vec<String> {
    let mut rest = out;
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let (frame, used) = syrup::decode_prefix(rest, &Default::default()).unwrap();
        labels.push(frame.as_record().unwrap().0.to_owned());
        rest = &rest[used..];
    }
    labels
}

#[test]
fn a_deferred_gc_answer_leaves_with_the_next_message_or_when_flushed() {
    let mut p = SessionPair::opened_with(SessionConfig {
        dialect: Dialect::Suite,
        defer_gc_answers: true,
        ..SessionConfig::default()
    });
    for _ in 0..2 {
        p.a.send_deliver(OutTarget::Export(0), &[], true, None, &mut no_tp)
            .unwrap();
    }
    p.a.take_output();
    assert!(p.a.release_answer(1).unwrap(), "it waits");
    assert!(p.a.take_output().is_empty(), "no write of its own");
    // The next message takes it along, ahead of itself.
    p.a.send_deliver_only(OutTarget::Export(0), &[Term::sym("x")], &mut no_tp)
        .unwrap();
    assert_eq!(
        labels(&p.a.take_output()),
        ["op:gc-answer", "op:deliver-only"]
    );
    // A quiet session: the host's flush sends it.
    assert!(p.a.release_answer(2).unwrap());
    p.a.flush_gc_answers();
    assert_eq!(labels(&p.a.take_output()), ["op:gc-answer"]);
    p.a.flush_gc_answers();
    assert!(p.a.take_output().is_empty(), "nothing twice");
}

#[test]
fn no_more_than_the_bound_of_gc_answers_wait() {
    let mut p = SessionPair::opened_with(SessionConfig {
        defer_gc_answers: true,
        ..SessionConfig::default()
    });
    let waited: Vec<bool> = (1..=MAX_DEFERRED_GC_ANSWERS as u64)
        .map(|pos| p.a.release_answer(pos).unwrap())
        .collect();
    assert!(waited[..MAX_DEFERRED_GC_ANSWERS - 1].iter().all(|w| *w));
    assert!(
        !waited[MAX_DEFERRED_GC_ANSWERS - 1],
        "the last one sends them all"
    );
    assert_eq!(labels(&p.a.take_output()).len(), MAX_DEFERRED_GC_ANSWERS);
}

#[test]
fn without_deferral_a_released_answer_goes_at_once() {
    let mut p = SessionPair::opened(Dialect::Suite);
    assert!(!p.a.release_answer(1).unwrap());
    assert_eq!(labels(&p.a.take_output()), ["op:gc-answer"]);
}

#[test]
fn frames_split_at_every_byte_still_decode() {
    let mut p = SessionPair::opened(Dialect::Suite);
    p.a.send_deliver_only(
        OutTarget::Export(0),
        &[Term::str("hello"), Term::sym("x")],
        &mut no_tp,
    )
    .unwrap();
    let out = p.a.take_output();
    for byte in &out[..out.len() - 1] {
        p.b.receive(std::slice::from_ref(byte));
        assert!(p.b.poll_event().is_none());
    }
    p.b.receive(&out[out.len() - 1..]);
    assert!(matches!(p.b.poll_event(), Some(Event::Deliver { .. })));
}

#[test]
fn abort_is_sent_and_the_session_goes_quiet() {
    let mut p = SessionPair::opened(Dialect::Suite);
    p.a.abort("bye");
    let (_, eb) = p.pump();
    assert!(
        matches!(eb.as_slice(), [Event::Aborted { reason, by_peer: true }] if reason == "bye"),
        "{eb:?}"
    );
    assert!(p.a.is_aborted() && p.b.is_aborted());
    // Nothing more goes out or comes in.
    assert_eq!(
        p.a.send_deliver_only(OutTarget::Export(0), &[], &mut no_tp),
        Err(CaptpError::Aborted)
    );
    p.b.receive(b"<8'op:abort3\"bye>");
    assert!(p.b.poll_event().is_none());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut p = SessionPair::opened(Dialect::Suite);
        p.a.receive(&bytes);
        while let Some(e) = p.a.poll_event() {
            if let Event::Aborted { by_peer, .. } = e {
                prop_assert!(!by_peer || bytes.windows(8).any(|w| w == b"op:abort"));
            }
        }
    }

    /// A record of any label (an op or not, known or not) never panics and is never
    /// dropped silently: it becomes an event, or the session aborts with a reason that it
    /// also sends the peer.
    #[test]
    fn arbitrary_records_are_handled_or_abort_with_a_reason(label in "(op|desc):[a-z-]{1,12}", fields in proptest::collection::vec(any::<u8>(), 0..6)) {
        let mut p = SessionPair::opened(Dialect::Suite);
        let v = Value::record(&label, fields.iter().map(|f| Value::from(*f)).collect());
        p.a.receive(&syrup::encode(&v));
        let events: Vec<Event> = std::iter::from_fn(|| p.a.poll_event()).collect();
        let aborted = events.iter().find_map(|e| match e {
            Event::Aborted { reason, by_peer } => Some((reason.clone(), *by_peer)),
            _ => None,
        });
        match aborted {
            Some((reason, by_peer)) => {
                prop_assert!(!reason.trim().is_empty(), "{v:?} aborted without a reason");
                prop_assert!(p.a.is_aborted());
                if !by_peer {
                    let sent = syrup::decode(&p.a.take_output());
                    prop_assert_eq!(
                        sent,
                        Ok(Value::record("op:abort", vec![Value::from(reason.as_str())])),
                        "the peer was not told why"
                    );
                }
            }
            None => prop_assert!(!events.is_empty(), "{:?} was dropped silently", v),
        }
    }
}
