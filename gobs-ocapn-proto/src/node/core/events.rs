//! What a session's peer asks of the node ([`Event`]s): deliveries, listens and selections
//! on its objects and promises, releases, and the session opening (one session per peer;
//! a session whose location is only claimed never displaces one whose location is proved,
//! see [`super::proof`]).

use super::{Core, Listener, OnOpen, Slot, Work, err_term};
use crate::captp::{CapRef, ConnId, DuplicateSession, Event, OutTarget, Term};
use crate::locator::PeerLocator;
use crate::syrup::Value;

/// How many times what was asked on a refused dial is asked again on a new one (a crossing
/// whose two sides each see the other's refusal first can repeat, each time with fresh
/// session keys deciding it anew).
const MAX_ASKED_AGAIN: u8 = 4;

impl Core {
    pub(super) fn handle_event(&mut self, conn: ConnId, event: Event) {
        if !matches!(event, Event::Opened { .. } | Event::Aborted { .. })
            && let Some(s) = self.sessions.get_mut(&conn)
        {
            // The peer read our hello and kept the session: it read what we asked too.
            s.unread = None;
        }
        match event {
            Event::Opened { location, .. } => self.opened(conn, *location),
            Event::Deliver {
                target,
                args,
                answer_pos,
                resolve_me,
            } => {
                let result = if answer_pos.is_some() || resolve_me.is_some() {
                    let p = self.new_promise();
                    if answer_pos.is_none()
                        && let Some(Slot::Promise(ps)) = self.objects.get_mut(&p.id)
                    {
                        ps.ephemeral = true;
                    }
                    if let Some(pos) = answer_pos
                        && let Some(s) = self.sess(conn)
                    {
                        s.session.bind_answer(pos, p);
                    }
                    if let Some(r) = resolve_me {
                        self.listen(
                            p.id,
                            Listener::Notify {
                                to: CapRef::Remote(r),
                                partial: false,
                            },
                        );
                    }
                    Some(p.id)
                } else {
                    None
                };
                let args = args
                    .into_iter()
                    .map(|a| self.redeem_handoffs(conn, a))
                    .collect();
                self.enqueue_deliver(CapRef::Local(target), args, result, Some(conn));
            }
            Event::Listen {
                target,
                resolver,
                wants_partial,
            } => {
                if target.promise {
                    self.listen(
                        target.id,
                        Listener::Notify {
                            to: CapRef::Remote(resolver),
                            partial: wants_partial,
                        },
                    );
                } else {
                    self.enqueue_deliver(
                        CapRef::Remote(resolver),
                        vec![Term::sym("fulfill"), Term::local(target)],
                        None,
                        None,
                    );
                }
            }
            Event::Select {
                target,
                selector,
                answer_pos,
            } => {
                let q = self.new_promise();
                if let Some(s) = self.sess(conn) {
                    s.session.bind_answer(answer_pos, q);
                }
                if target.promise {
                    self.listen(target.id, Listener::Select(selector, q.id));
                } else {
                    self.settle(
                        q.id,
                        Err(err_term(format!(
                            "{selector:?}: an object is not a struct, list or tagged value"
                        ))),
                    );
                }
            }
            Event::ExportReleased(obj) => self.queue.push_back(Work::Released {
                obj: obj.id,
                answer: false,
            }),
            Event::AnswerReleased(obj) => self.queue.push_back(Work::Released {
                obj: obj.id,
                answer: true,
            }),
            Event::Aborted { reason, by_peer } => {
                tracing::info!(conn = conn.0, reason, by_peer, "CapTP session ended");
                if by_peer {
                    self.ask_again_elsewhere(conn);
                }
            }
        }
    }

    pub(super) fn opened(&mut self, conn: ConnId, location: PeerLocator) {
        tracing::debug!(conn = conn.0, peer = %location.to_uri(), "CapTP session open");
        let believed = match self.sessions.get_mut(&conn) {
            Some(s) => {
                s.believed = s.proof.as_ref().is_none_or(|p| p.backs(&location));
                s.is_believed()
            }
            None => return,
        };
        let existing = self.peers.get(&location).copied().filter(|c| *c != conn);
        let existing_believed = existing
            .and_then(|other| self.sessions.get(&other))
            .map(|s| s.is_believed());
        match (existing_believed, believed) {
            (Some(true), false) => {
                tracing::info!(
                    peer = %location.to_uri(),
                    "refusing a session that claims the location of a proved one"
                );
                if let Some(s) = self.sess(conn) {
                    s.session.abort(
                        "a session whose peer proved this location is open; this one only \
                         claims it (over tcp-tls, present the location's certificate as the \
                         TLS client certificate)",
                    );
                }
                return;
            }
            (Some(false), true) => {
                if let Some(other) = existing
                    && let Some(s) = self.sess(other)
                {
                    s.session.abort(
                        "replaced by a session whose peer proved the location this one claimed",
                    );
                }
                return self.register(conn, location);
            }
            _ => {}
        }
        if let Some(other) = existing
            && let Some(theirs) = self.sessions.get(&other)
            && theirs.dialed.is_some()
            && self.sessions.get(&conn).is_some_and(|s| s.dialed.is_none())
        {
            // Crossed hellos: we dialed them while they dialed us. The connection whose
            // initiator has the lower Public Identifier is aborted.
            let our_outbound = theirs.session.our_side_id();
            let their_outbound = self
                .sessions
                .get(&conn)
                .and_then(|s| s.session.remote_key())
                .map(|k| k.side_id());
            if let Some(their_outbound) = their_outbound {
                if our_outbound < their_outbound {
                    // The peer aborts our connection on reading our hello, before what we
                    // asked on it: ask that again here, with what still waited to be asked.
                    let pending = self
                        .sessions
                        .get_mut(&other)
                        .map(|s| {
                            let mut ops = s.unread.take().unwrap_or_default();
                            ops.append(&mut s.on_open);
                            ops
                        })
                        .unwrap_or_default();
                    if let Some(s) = self.sess(other) {
                        s.session.abort("crossed hellos: this connection loses");
                    }
                    let refused = self.refused.remove(&location).map(|r| r.ops);
                    self.peers.insert(location, conn);
                    for op in pending.into_iter().chain(refused.into_iter().flatten()) {
                        self.run_on_open(conn, op);
                    }
                } else if let Some(s) = self.sess(conn) {
                    s.session.abort("crossed hellos: this connection loses");
                }
                return;
            }
        }
        // One session per peer pair: another open session with this peer.
        if let Some(other) = existing
            && self
                .sessions
                .get(&other)
                .is_some_and(|s| s.session.is_open() && !s.session.is_aborted())
        {
            match self.config.duplicate_session {
                DuplicateSession::RefuseNew => {
                    tracing::info!(peer = %location.to_uri(), "refusing a second session from a peer");
                    if let Some(s) = self.sess(conn) {
                        s.session.abort(
                            "a session with this peer is already open (one session per peer pair)",
                        );
                    }
                    return;
                }
                DuplicateSession::ReplaceOld => {
                    if let Some(s) = self.sess(other) {
                        s.session
                            .abort("replaced by a newer session from the same peer");
                    }
                }
            }
        }
        self.register(conn, location);
    }

    /// The peer aborted `conn`, a session we dialed, having sent nothing past its hello:
    /// it refused the session on reading our hello, so what we asked on it was never read.
    /// That is what the losing side of crossed hellos sees when the peer's abort overtakes
    /// the peer's own hello on its dial: while a connection accepted here has not said
    /// hello yet, it may be that dial, and what was asked waits for the next session with
    /// this peer; otherwise it is asked again on a new dial (a bounded number of times)
    /// rather than broken.
    fn ask_again_elsewhere(&mut self, conn: ConnId) {
        let Some(slot) = self.sessions.get_mut(&conn) else {
            return;
        };
        let (Some(location), Some(mut ops)) = (slot.dialed.clone(), slot.unread.take()) else {
            return;
        };
        ops.append(&mut slot.on_open);
        let tries = slot.asked_again + 1;
        if ops.is_empty() || tries > MAX_ASKED_AGAIN {
            slot.on_open = ops;
            return;
        }
        self.peers.retain(|_, c| *c != conn);
        for op in &ops {
            // Its answer will come on another session: the end of `conn` must not break it.
            if let Some(Slot::Promise(ps)) = self.objects.get_mut(&op.promise()) {
                ps.forward = None;
            }
        }
        let parked = self.refused.entry(location).or_default();
        parked.tries = parked.tries.max(tries);
        parked.ops.append(&mut ops);
        if !self.awaiting_hello() {
            self.ask_refused_again();
        }
    }

    /// Whether a connection accepted here has not said hello yet.
    pub(super) fn awaiting_hello(&self) -> bool {
        self.sessions
            .values()
            .any(|s| s.dialed.is_none() && !s.session.is_open() && !s.session.is_aborted())
    }

    /// What refused dials asked, that no session has carried since: asked again, each on
    /// a new dial to its peer.
    pub(super) fn ask_refused_again(&mut self) {
        for (location, parked) in std::mem::take(&mut self.refused) {
            let next = self.session_to(&location);
            if let Some(s) = self.sessions.get_mut(&next) {
                s.asked_again = s.asked_again.max(parked.tries);
            }
            for op in parked.ops {
                self.when_open(next, op);
            }
        }
    }

    /// `conn` is the session with `location` from now on: what waited for it runs.
    fn register(&mut self, conn: ConnId, location: PeerLocator) {
        let refused = self.refused.remove(&location).map(|r| r.ops);
        self.peers.insert(location, conn);
        let mut pending = self
            .sessions
            .get_mut(&conn)
            .map(|s| std::mem::take(&mut s.on_open))
            .unwrap_or_default();
        pending.extend(refused.into_iter().flatten());
        for op in pending {
            self.run_on_open(conn, op);
        }
    }

    pub(super) fn run_on_open(&mut self, conn: ConnId, op: OnOpen) {
        if let Some(unread) = self.sessions.get_mut(&conn).and_then(|s| s.unread.as_mut()) {
            unread.push(op.clone());
        }
        match op {
            OnOpen::Fetch { swiss, promise } => {
                // A swiss number is a byte string on the wire (Goblins refuses a string).
                self.send_remote(
                    conn,
                    OutTarget::Export(0),
                    vec![Term::sym("fetch"), Term::Data(Value::Bytes(swiss))],
                    Some(promise),
                );
            }
            OnOpen::Withdraw {
                signed_give,
                gifter,
                promise,
            } => match self.handoff_receive(conn, gifter, signed_give) {
                Ok(receive) => self.send_remote(
                    conn,
                    OutTarget::Export(0),
                    vec![Term::sym("withdraw-gift"), Term::Data(receive)],
                    Some(promise),
                ),
                Err(e) => self.settle(promise, Err(err_term(e.to_string()))),
            },
        }
    }
}
