//! The node core without I/O: what it asks its shell to do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::node::{Action, Core};
use gobs_ocapn::syrup::{self, Limits};

#[test]
fn a_peer_that_never_says_hello_is_aborted_at_the_deadline() {
    let mut core = Core::new(PeerLocator::new("test", "me"), SessionConfig::default());
    let conn = core.accepted();
    let hello = core.take_actions();
    assert!(
        matches!(hello.as_slice(), [Action::Write(c, _)] if *c == conn),
        "{hello:?}"
    );
    core.hello_deadline(conn);
    let actions = core.take_actions();
    let [Action::Write(_, bytes), Action::Close(c)] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!(*c, conn);
    let (abort, _) = syrup::decode_prefix(bytes, &Limits::default()).unwrap();
    assert_eq!(
        format!("{abort:?}"),
        r#"<'op:abort "no op:start-session in time">"#
    );
    assert!(core.session_stats().is_empty(), "the session is gone");
}

#[test]
fn swiss_numbers_are_found_only_when_equal() {
    let mut core = Core::new(PeerLocator::new("test", "me"), SessionConfig::default());
    let obj = core.spawn(Box::new(|_: &mut gobs_ocapn::node::Cx<'_>, _| {
        Ok(gobs_ocapn::captp::Term::sym("hi"))
    }));
    core.bind_swiss(b"0123456789abcdef0123456789abcdef", obj);
    assert_eq!(
        core.lookup_swiss(b"0123456789abcdef0123456789abcdef"),
        Some(obj)
    );
    assert_eq!(core.lookup_swiss(b"0123456789abcdef0123456789abcdeF"), None);
    assert_eq!(core.lookup_swiss(b""), None);
}

/// Two cores wired by a simulated network: each Dial becomes an accept on the other side.
struct Net {
    cores: [Core; 2],
    /// (core, conn) → (core, conn) of the other end.
    links: std::collections::HashMap<(usize, u64), (usize, u64)>,
    closed: Vec<(usize, u64)>,
}

impl Net {
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut any = false;
            for side in 0..2 {
                for action in self.cores[side].take_actions() {
                    any = true;
                    match action {
                        Action::Dial(conn, _) => {
                            let other = 1 - side;
                            let accepted = self.cores[other].accepted();
                            self.links.insert((side, conn.0), (other, accepted.0));
                            self.links.insert((other, accepted.0), (side, conn.0));
                        }
                        Action::Write(conn, bytes) => {
                            if let Some(&(o, oc)) = self.links.get(&(side, conn.0)) {
                                self.cores[o].bytes(gobs_ocapn::captp::ConnId(oc), &bytes);
                            }
                        }
                        Action::Close(conn) => {
                            self.closed.push((side, conn.0));
                            if let Some((o, oc)) = self.links.remove(&(side, conn.0)) {
                                self.links.remove(&(o, oc));
                                self.cores[o]
                                    .closed(gobs_ocapn::captp::ConnId(oc), "closed by the peer");
                            }
                        }
                    }
                }
            }
            if !any {
                return;
            }
        }
        panic!("the network never went quiet");
    }
}

#[test]
fn crossed_hellos_between_two_nodes_leave_one_session_and_lose_no_message() {
    use gobs_ocapn::captp::{Ref, Term};
    use gobs_ocapn::fixtures;
    use gobs_ocapn::locator::Sturdyref;
    use gobs_ocapn::syrup::Value;

    for round in 0..20 {
        let loc = |n: &str| {
            PeerLocator::new("sim", format!("{n}-{round}"))
                .with_hint("host", "sim")
                .with_hint("port", "1")
        };
        let (lx, ly) = (loc("x"), loc("y"));
        let mut x = Core::new(lx.clone(), SessionConfig::default());
        let mut y = Core::new(ly.clone(), SessionConfig::default());
        fixtures::install(&mut x);
        fixtures::install(&mut y);
        // Both dial at once.
        let px = x.enliven(&Sturdyref {
            peer: ly.clone(),
            swiss: fixtures::ECHO_GC.to_vec(),
        });
        let py = y.enliven(&Sturdyref {
            peer: lx.clone(),
            swiss: fixtures::ECHO_GC.to_vec(),
        });
        let mut net = Net {
            cores: [x, y],
            links: Default::default(),
            closed: Vec::new(),
        };
        net.settle();
        // Exactly one connection pair was aborted; one session each remains.
        assert_eq!(net.closed.len(), 2, "round {round}: {:?}", net.closed);
        for core in &net.cores {
            let open: Vec<_> = core
                .session_stats()
                .into_iter()
                .filter(|s| s.1.is_some())
                .collect();
            assert_eq!(open.len(), 1, "round {round}: {open:?}");
        }
        // Both enlivenings went through the surviving session, and it carries messages.
        for (side, p) in [(0, px), (1, py)] {
            let Some(Ok(Term::Ref(echo @ Ref::Remote(_)))) = net.cores[side].promise_state(p.id)
            else {
                panic!(
                    "round {round}: side {side} got {:?}",
                    net.cores[side].promise_state(p.id)
                );
            };
            let q = net.cores[side].send(echo, vec![Term::Data(Value::from(7u8))]);
            net.cores[side].run();
            net.settle();
            assert_eq!(
                net.cores[side].promise_state(q.id),
                Some(Ok(Term::List(vec![Term::Data(Value::from(7u8))]))),
                "round {round}, side {side}"
            );
        }
    }
}

mod fuzz {
    use super::*;
    use gobs_ocapn::captp::{ConnId, KeyPair};
    use gobs_ocapn::syrup::Value;
    use proptest::prelude::*;

    fn hello() -> Vec<u8> {
        let keys = KeyPair::generate().unwrap();
        let loc = PeerLocator::new("test", "fuzzer").to_value();
        let sig = keys.sign_value(&Value::record("my-location", vec![loc.clone()]));
        syrup::encode(&Value::record(
            "op:start-session",
            vec![Value::from("1.0"), keys.public().to_value(), loc, sig],
        ))
    }

    fn arb_desc() -> impl Strategy<Value = Value> {
        let pos = 0u64..6;
        prop_oneof![
            pos.clone()
                .prop_map(|p| Value::record("desc:export", vec![p.into()])),
            pos.clone()
                .prop_map(|p| Value::record("desc:answer", vec![p.into()])),
            pos.clone()
                .prop_map(|p| Value::record("desc:import-object", vec![p.into()])),
            pos.prop_map(|p| Value::record("desc:import-promise", vec![p.into()])),
            Just(Value::symbol("fetch")),
            Just(Value::Bytes(fixtures_swiss().to_vec())),
            Just(Value::symbol("fulfill")),
            any::<i64>().prop_map(Value::from),
        ]
    }

    fn fixtures_swiss() -> &'static [u8] {
        gobs_ocapn::fixtures::ECHO_GC
    }

    /// A fetch from the bootstrap object, as a well-behaved peer sends it (the swiss
    /// number known or not, an answer position fresh or reused).
    fn arb_fetch() -> impl Strategy<Value = Value> {
        (
            prop_oneof![
                Just(fixtures_swiss().to_vec()),
                proptest::collection::vec(any::<u8>(), 0..4)
            ],
            prop_oneof![Just(Value::Bool(false)), (0u64..6).prop_map(Value::from)],
            0u64..6,
        )
            .prop_map(|(swiss, answer, r)| {
                Value::record(
                    "op:deliver",
                    vec![
                        Value::record("desc:export", vec![0.into()]),
                        Value::List(vec![Value::symbol("fetch"), Value::Bytes(swiss)]),
                        answer,
                        Value::record("desc:import-object", vec![r.into()]),
                    ],
                )
            })
    }

    fn arb_op() -> impl Strategy<Value = Value> {
        let args = || proptest::collection::vec(arb_desc(), 0..4).prop_map(Value::List);
        prop_oneof![
            // Weighted so that sessions often live long enough to answer.
            6 => arb_fetch(),
            1 => (arb_desc(), args()).prop_map(|(t, a)| Value::record("op:deliver-only", vec![t, a])),
            1 => (
                arb_desc(),
                args(),
                prop_oneof![Just(Value::Bool(false)), (0u64..6).prop_map(Value::from)],
                arb_desc()
            )
                .prop_map(|(t, a, p, r)| Value::record("op:deliver", vec![t, a, p, r])),
            1 => (arb_desc(), arb_desc())
                .prop_map(|(t, r)| Value::record("op:listen", vec![t, r, Value::Bool(false)])),
            1 => (
                proptest::collection::vec(0u64..6, 0..3),
                proptest::collection::vec(0u64..3, 0..3)
            )
                .prop_map(|(p, d)| {
                    Value::record(
                        "op:gc-export",
                        vec![
                            Value::List(p.into_iter().map(Value::from).collect()),
                            Value::List(d.into_iter().map(Value::from).collect()),
                        ],
                    )
                }),
            1 => proptest::collection::vec(0u64..6, 0..3).prop_map(|p| Value::record(
                "op:gc-answer",
                vec![Value::List(p.into_iter().map(Value::from).collect())]
            )),
        ]
    }

    /// What the node wrote on the connection in one step, frame by frame (it must be valid
    /// Syrup), and whether it closed the connection.
    fn step_output(core: &mut Core, conn: ConnId) -> (Vec<Value>, bool) {
        let (mut frames, mut closed) = (Vec::new(), false);
        for action in core.take_actions() {
            match action {
                Action::Write(c, bytes) if c == conn => {
                    assert!(!closed, "the node wrote after closing the connection");
                    let mut rest = &bytes[..];
                    while !rest.is_empty() {
                        let (frame, used) = syrup::decode_prefix(rest, &Limits::default())
                            .expect("the node wrote invalid Syrup");
                        frames.push(frame);
                        rest = &rest[used..];
                    }
                }
                Action::Close(c) if c == conn => closed = true,
                other => panic!("the node did something unasked: {other:?}"),
            }
        }
        (frames, closed)
    }

    /// The resolution the node sent to the peer's resolver `r` among `frames`, if any.
    fn resolution_to(frames: &[Value], r: &Value) -> Option<Value> {
        frames.iter().find_map(|f| match f.as_record() {
            Some(("op:deliver-only" | "op:deliver", [to, args, ..]))
                if to.as_record().map(|t| t.1) == Some(std::slice::from_ref(r))
                    && to.as_record().map(|t| t.0) == Some("desc:export") =>
            {
                args.as_list()?.first().cloned()
            }
            _ => None,
        })
    }

    /// The resolver position of an `op:deliver` to the bootstrap object (`desc:export 0`)
    /// whose resolver is one of the peer's objects: the node must answer it at once.
    fn bootstrap_resolver(op: &Value) -> Option<Value> {
        let ("op:deliver", [to, _, _, resolver]) = op.as_record()? else {
            return None;
        };
        if to != &Value::record("desc:export", vec![0.into()]) {
            return None;
        }
        match resolver.as_record()? {
            ("desc:import-object", [r]) => Some(r.clone()),
            _ => None,
        }
    }

    proptest! {
        /// Sequences of well-formed but arbitrary ops (forged positions, wrong kinds, GC of
        /// what was never sent) against a node with the fixtures: no panic, and the node
        /// either answers or aborts that session with a reason. Fed one op at a time:
        /// - once the node writes `op:abort`, its reason is a non-empty string, it is the
        ///   last thing written, and the connection is closed;
        /// - until then, every message to the bootstrap object with a resolver is resolved
        ///   (fulfilled or broken) in the same step, and after the last op a fresh fetch
        ///   is fulfilled: the session still answers.
        #[test]
        fn arbitrary_op_sequences_are_answered_or_aborted_with_a_reason(ops in proptest::collection::vec(arb_op(), 1..12)) {
            let mut core = Core::new(PeerLocator::new("test", "me"), SessionConfig::default());
            gobs_ocapn::fixtures::install(&mut core);
            let conn = core.accepted();
            core.bytes(conn, &hello());
            let (frames, closed) = step_output(&mut core, conn);
            prop_assert!(!closed, "a valid hello was refused: {frames:?}");
            let probe = Value::record(
                "op:deliver",
                vec![
                    Value::record("desc:export", vec![0.into()]),
                    Value::List(vec![Value::symbol("fetch"), Value::Bytes(fixtures_swiss().to_vec())]),
                    Value::Bool(false),
                    Value::record("desc:import-object", vec![100.into()]),
                ],
            );
            for op in ops.iter().chain([&probe]) {
                core.bytes(conn, &syrup::encode(op));
                let (frames, closed) = step_output(&mut core, conn);
                let abort = frames.iter().position(|f| f.as_record().map(|r| r.0) == Some("op:abort"));
                if let Some(at) = abort {
                    let reason = frames[at].as_record().unwrap().1;
                    prop_assert!(
                        matches!(reason, [Value::String(s)] if !s.trim().is_empty()),
                        "an abort without a reason: {:?}", frames[at]
                    );
                    prop_assert_eq!(at, frames.len() - 1, "the node wrote after its abort");
                    prop_assert!(closed, "the node aborted and kept the connection open");
                    return Ok(());
                }
                prop_assert!(!closed, "the connection closed without an abort after {op:?}");
                if let Some(r) = bootstrap_resolver(op) {
                    let outcome = resolution_to(&frames, &r);
                    prop_assert!(
                        matches!(&outcome, Some(Value::Symbol(s)) if s == "fulfill" || s == "break"),
                        "{op:?} was neither answered nor aborted: the node wrote {frames:?}"
                    );
                    if op == &probe {
                        prop_assert_eq!(outcome, Some(Value::symbol("fulfill")), "the closing fetch broke: {:?}", frames);
                    }
                }
            }
        }
    }
}

/// A message pipelined on an answer, and the `op:gc-answer` for that answer, arrive in one
/// read: the message still reaches the answer (the release waits its turn).
#[test]
fn a_pipelined_message_and_the_gc_answer_after_it_in_one_read_both_go_through() {
    use gobs_ocapn::captp::{ConnId, Ref, Term};
    use gobs_ocapn::fixtures;
    use gobs_ocapn::locator::Sturdyref;

    let loc = |n: &str| {
        PeerLocator::new("sim", n)
            .with_hint("host", "sim")
            .with_hint("port", "1")
    };
    let (lc, ls) = (loc("client"), loc("server"));
    let client = Core::new(lc, SessionConfig::default());
    let mut server = Core::new(ls.clone(), SessionConfig::default());
    fixtures::install(&mut server);
    let mut net = Net {
        cores: [client, server],
        links: Default::default(),
        closed: Vec::new(),
    };
    let p = net.cores[0].enliven(&Sturdyref {
        peer: ls,
        swiss: fixtures::CAR_FACTORY_BUILDER.to_vec(),
    });
    net.cores[0].run();
    net.settle();
    let Some(Ok(Term::Ref(builder))) = net.cores[0].promise_state(p.id) else {
        panic!("enliven: {:?}", net.cores[0].promise_state(p.id))
    };
    let (&(_, cc), &(_, sc)) = net.links.iter().find(|(k, _)| k.0 == 0).unwrap();
    let (cc, sc) = (ConnId(cc), ConnId(sc));
    let writes = |core: &mut Core| -> Vec<u8> {
        let mut out = Vec::new();
        for a in core.take_actions() {
            match a {
                Action::Write(_, b) => out.extend(b),
                other => panic!("{other:?}"),
            }
        }
        out
    };

    // The client pipelines: builder → factory (answer 0), factory → car (answer 1).
    let factory = net.cores[0].send(builder, vec![]);
    let car = net.cores[0].send(
        Ref::Local(factory),
        vec![Term::List(vec![Term::sym("blue"), Term::sym("roadster")])],
    );
    net.cores[0].run();
    let to_server = writes(&mut net.cores[0]);
    net.cores[1].bytes(sc, &to_server);
    // The server answers both; the answers are on their way back.
    let to_client = writes(&mut net.cores[1]);
    // Meanwhile the client sends to the car, still through answer 1 ...
    let drive = net.cores[0].send(Ref::Local(car), vec![]);
    net.cores[0].run();
    let mut to_server = writes(&mut net.cores[0]);
    // ... then hears the answers and releases answers 0 and 1.
    net.cores[0].bytes(cc, &to_client);
    to_server.extend(writes(&mut net.cores[0]));
    // The server reads the message and the releases in one go.
    net.cores[1].bytes(sc, &to_server);
    net.settle();
    assert_eq!(
        net.cores[0].promise_state(drive.id),
        Some(Ok(Term::str("Vroom! I am a blue roadster car!")))
    );
}
