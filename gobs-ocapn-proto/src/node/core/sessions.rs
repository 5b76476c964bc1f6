//! The node's CapTP sessions, one a connection: opening them (accepted or dialed), feeding
//! them bytes, flushing their output as [`Action`]s, and what ends when a connection does.

use super::{Action, Core, OnOpen, PeerProof, SessionSlot, Slot, Work, error_record, kinds};
use crate::captp::{ConnId, KeyPair, LocalRef, ObjId, Session};
use crate::locator::PeerLocator;

impl Core {
    /// A session to act on; marks it for the next flush.
    pub(super) fn sess(&mut self, conn: ConnId) -> Option<&mut SessionSlot> {
        self.dirty.insert(conn);
        self.sessions.get_mut(&conn).map(|s| &mut **s)
    }

    /// Whether connection `conn` still has a session (open or opening).
    pub fn has_session(&self, conn: ConnId) -> bool {
        self.sessions.contains_key(&conn)
    }

    /// For each session: its connection, the peer (once known), how many objects it
    /// exports and how many it imports.
    pub fn session_stats(&self) -> Vec<(ConnId, Option<PeerLocator>, usize, usize)> {
        self.sessions
            .iter()
            .map(|(c, s)| {
                (
                    *c,
                    s.session.remote_location().map(|(l, _)| l.clone()),
                    s.session.export_count(),
                    s.session.import_count(),
                )
            })
            .collect()
    }

    /// What the open session with `peer` holds for it and from it, if there is one: how
    /// many objects it exports, imports, and answers it keeps for the peer's questions.
    pub fn tables_with(&self, peer: &PeerLocator) -> Option<(usize, usize, usize)> {
        let s = &self.sessions.get(self.peers.get(peer)?)?.session;
        Some((s.export_count(), s.import_count(), s.answer_count()))
    }

    /// Whether the node holds a session with `peer` and believes its peer is `peer`: a
    /// session it dialed, or one whose netlayer proved that location ([`PeerProof`]).
    pub fn believes(&self, peer: &PeerLocator) -> bool {
        self.peers
            .get(peer)
            .and_then(|c| self.sessions.get(c))
            .is_some_and(|s| s.is_believed())
    }

    /// The location of connection `conn`'s peer, if its session is open and the node
    /// believes it (dialed, or proved by the netlayer): what a host may trust a peer for.
    pub fn believed_location(&self, conn: ConnId) -> Option<PeerLocator> {
        let slot = self.sessions.get(&conn).filter(|s| s.is_believed())?;
        slot.session.remote_location().map(|(l, _)| l.clone())
    }

    /// Aborts the session with `peer`, if there is one; its promises break.
    pub fn abort_peer(&mut self, peer: &PeerLocator, reason: &str) -> bool {
        let Some(conn) = self.peers.get(peer).copied() else {
            return false;
        };
        if let Some(s) = self.sess(conn) {
            s.session.abort(reason);
        }
        self.flush();
        true
    }

    /// A new connection accepted from a peer, whose claim to a location is believed
    /// whatever it is (for hosts whose transports prove nothing); returns its id.
    pub fn accepted(&mut self) -> ConnId {
        self.accepted_with(PeerProof::Unauthenticated { transport: None })
    }

    /// A new connection accepted from a peer, of which its netlayer proved `proof`;
    /// returns its id.
    pub fn accepted_with(&mut self, proof: PeerProof) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.open_session(conn, None, Some(proof));
        self.flush();
        conn
    }

    pub(super) fn open_session(
        &mut self,
        conn: ConnId,
        dialed: Option<PeerLocator>,
        proof: Option<PeerProof>,
    ) {
        let unread = dialed.as_ref().map(|_| Vec::new());
        let keys = match KeyPair::generate() {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "no randomness for a session key; closing the connection");
                self.actions.push(Action::Close(conn));
                return;
            }
        };
        let id = self.alloc();
        self.objects.insert(id, Slot::Bootstrap(conn));
        let bootstrap = LocalRef { id, promise: false };
        let session = Session::new(conn, self.config.clone(), keys, &self.locator, bootstrap)
            .with_drop_sink(self.drops.clone());
        self.dirty.insert(conn);
        self.sessions.insert(
            conn,
            Box::new(SessionSlot {
                session,
                dialed,
                proof,
                believed: false,
                on_open: Vec::new(),
                unread,
                asked_again: 0,
                gobs_peer: false,
                heard: false,
                quiet_sweeps: 0,
            }),
        );
    }

    /// Aborts `conn` if its peer has not sent `op:start-session` yet, at once
    /// ([`Core::handle_timeout`] calls it at the deadline [`Core::connected`] set, so a
    /// silent peer cannot hold a session open).
    pub fn hello_deadline(&mut self, conn: ConnId) {
        if let Some(s) = self.sess(conn)
            && !s.session.is_open()
            && !s.session.is_aborted()
        {
            s.session.abort("no op:start-session in time");
            self.flush();
        }
    }

    /// The shell could not connect the dial `conn`.
    pub fn dial_failed(&mut self, conn: ConnId, error: &str) {
        let who = self.who(conn);
        self.connection_lost(conn, &format!("cannot reach {who}: {error}"));
    }

    /// Bytes arrived on `conn`.
    pub fn bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        match self.sess(conn) {
            Some(s) => {
                s.heard = true;
                s.session.receive(bytes);
            }
            None => return,
        }
        self.pump(conn);
        self.run();
    }

    /// The connection ended (EOF or an error).
    pub fn closed(&mut self, conn: ConnId, why: &str) {
        let who = self.who(conn);
        self.connection_lost(conn, &format!("connection to {who} lost: {why}"));
    }

    pub(super) fn connection_lost(&mut self, conn: ConnId, why: &str) {
        self.remember_departed(conn);
        self.forget_told(conn);
        // What waited for the session to open was never sent; what was out may have run.
        let unreachable = error_record(kinds::UNREACHABLE, why);
        let lost = error_record(kinds::SESSION_LOST, why);
        if let Some(slot) = self.sessions.remove(&conn) {
            // The peer lets go of everything it imported and every answer it held.
            let (exports, answers) = slot.session.held_by_peer();
            for obj in exports {
                self.queue.push_back(Work::Released { obj, answer: false });
            }
            for obj in answers {
                self.queue.push_back(Work::Released { obj, answer: true });
            }
            for op in slot.on_open {
                self.settle(op.promise(), Err(unreachable.clone()));
            }
        }
        self.peers.retain(|_, c| *c != conn);
        if !self.refused.is_empty() && !self.awaiting_hello() {
            // No connection that may be a refusing peer's own dial is left to wait for.
            self.ask_refused_again();
        }
        self.objects
            .retain(|_, s| !matches!(s, Slot::Bootstrap(c) if *c == conn));
        // Promises answered over this connection can never settle now.
        let broken: Vec<ObjId> = self
            .objects
            .iter()
            .filter_map(|(id, s)| match s {
                Slot::Promise(p)
                    if p.settled.is_none()
                        && (p.forward.is_some_and(|(c, _)| c == conn)
                            || p.depends_on == Some(conn)) =>
                {
                    Some(*id)
                }
                _ => None,
            })
            .collect();
        for p in broken {
            self.settle(p, Err(lost.clone()));
        }
        self.run();
    }

    /// The session to reach `peer` by: the one it has, if the node believes that session's
    /// peer is `peer` (what goes to `peer` must not go to whoever claims its name), else a
    /// new one, dialed.
    pub(super) fn session_to(&mut self, peer: &PeerLocator) -> ConnId {
        if let Some(c) = self.peers.get(peer)
            && self.sessions.get(c).is_some_and(|s| s.is_believed())
        {
            return *c;
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.open_session(conn, Some(peer.clone()), None);
        self.peers.insert(peer.clone(), conn);
        self.actions.push(Action::Dial(conn, peer.clone()));
        conn
    }

    pub(super) fn when_open(&mut self, conn: ConnId, op: OnOpen) {
        let open = self
            .sessions
            .get(&conn)
            .is_some_and(|s| s.session.is_open());
        if open {
            self.run_on_open(conn, op);
        } else if let Some(s) = self.sess(conn) {
            s.on_open.push(op);
        }
    }

    pub(super) fn pump(&mut self, conn: ConnId) {
        loop {
            let Some(slot) = self.sess(conn) else {
                return;
            };
            let Some(event) = slot.session.poll_event() else {
                break;
            };
            self.handle_event(conn, event);
        }
        self.flush();
    }

    /// Whether a session holds `op:gc-answer`s back for its next message (see
    /// [`SessionConfig::defer_gc_answers`](crate::captp::SessionConfig)): the host then
    /// calls [`Core::flush_deferred_gc`] when they have waited long enough.
    pub fn has_deferred_gc(&self) -> bool {
        !self.deferred_gc.is_empty()
    }

    /// Sends every `op:gc-answer` still waiting (those that left with a later message are
    /// gone already), so a session that went quiet lets its peer free the answers.
    pub fn flush_deferred_gc(&mut self) {
        while let Some(conn) = self.deferred_gc.pop_first() {
            if let Some(slot) = self.sessions.get_mut(&conn) {
                slot.session.flush_gc_answers();
                self.dirty.insert(conn);
            }
        }
        self.flush();
    }

    pub(super) fn flush(&mut self) {
        // The imports let go of, by connection in order (each in the order dropped): a
        // stable sort of the one vector, where a map allocated a node with every message.
        // Its room goes back and forth between the sink and the core.
        let mut dropped = std::mem::take(&mut self.dropped);
        self.drops.drain_into(&mut dropped);
        dropped.sort_by_key(|&(conn, _)| conn);
        for group in dropped.chunk_by(|a, b| a.0 == b.0) {
            if let Some(slot) = self.sess(group[0].0) {
                slot.session
                    .release_dropped_of(group.iter().map(|&(_, pos)| pos));
            }
        }
        dropped.clear();
        self.dropped = dropped;
        let mut closing = Vec::new();
        while let Some(conn) = self.dirty.pop_first() {
            let Some(slot) = self.sessions.get_mut(&conn) else {
                continue;
            };
            let out = slot.session.take_output();
            if !out.is_empty() {
                self.actions.push(Action::Write(conn, out));
            }
            if slot.session.is_aborted() {
                closing.push(conn);
            }
        }
        for conn in closing {
            self.actions.push(Action::Close(conn));
            if !self.sessions.contains_key(&conn) {
                continue;
            }
            let why = match self.peer_uri(conn) {
                Some(uri) => format!("session with {uri} aborted"),
                None => "session aborted".into(),
            };
            self.connection_lost(conn, &why);
        }
    }
}
