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
