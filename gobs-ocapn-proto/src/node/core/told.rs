//! Sturdyrefs told with answers: before an answer that carries gobs actors of this node
//! goes to a gobs peer, the peer is told each one's sturdyref (`gobs:sturdyref-is <ref>
//! <uri>` to its bootstrap object), so that it can save them without asking
//! (`gobs:sturdyref`: one more round trip per answer).
//!
//! Only a peer that showed it is a gobs node — it asked this node's bootstrap object a
//! `gobs:` question — is told: other peers (Goblins) never see the message. The told
//! side keeps what it was told, with the reference (so the peer cannot reuse the position
//! meanwhile), until the answer's taker asks for it, the session ends, or
//! [`MAX_TOLD`] newer ones push it out.

use std::collections::VecDeque;

use super::gc::objects_in;
use super::{Core, Slot};
use crate::captp::{CapRef, ConnId, LocalRef, OutTarget, RemoteRef, Term};
use crate::locator::Sturdyref;

/// The most told sturdyrefs a node keeps waiting for their answers' takers.
const MAX_TOLD: usize = 256;

/// Sturdyrefs peers told, oldest first: the reference (kept alive) and its URI.
#[derive(Default)]
pub(super) struct Told(VecDeque<(RemoteRef, String)>);

impl Core {
    /// `fulfill value` is about to go to `to`: tell a gobs peer the sturdyrefs of this
    /// node's gobs actors in `value` first (minting them on first use, as
    /// `gobs:sturdyref` does).
    pub(super) fn tell_sturdyrefs(&mut self, to: &CapRef, value: &Term) {
        let CapRef::Remote(r) = to else { return };
        let conn = r.conn();
        if !self.sessions.get(&conn).is_some_and(|s| s.gobs_peer) {
            return;
        }
        for id in objects_in(std::slice::from_ref(value)) {
            let is_actor = matches!(
                self.objects.get(&id),
                Some(Slot::Object(o)) if o.actor_type().is_some()
            );
            let obj = LocalRef { id, promise: false };
            // Not told, it is asked for as before.
            let Some(swiss) = is_actor.then(|| self.swiss_of(obj).ok()).flatten() else {
                continue;
            };
            let uri = Sturdyref {
                peer: self.locator().clone(),
                swiss,
            }
            .to_uri();
            let tell = vec![
                Term::sym("gobs:sturdyref-is"),
                Term::local(obj),
                Term::str(&uri),
            ];
            self.send_remote(conn, OutTarget::Export(0), tell, None);
        }
    }

    /// The peer of `conn` asked a `gobs:` question: it is a gobs node, to be told.
    pub(super) fn mark_gobs_peer(&mut self, conn: ConnId) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.gobs_peer = true;
        }
    }

    /// The peer of `conn` told the sturdyref of its object `r` (bootstrap's
    /// `gobs:sturdyref-is`).
    pub(super) fn told_sturdyref(&mut self, conn: ConnId, r: RemoteRef, uri: String) -> bool {
        if r.conn() != conn || r.is_promise() {
            return false;
        }
        self.told.0.retain(|(old, _)| old != &r);
        if self.told.0.len() >= MAX_TOLD {
            self.told.0.pop_front();
        }
        self.told.0.push_back((r, uri));
        true
    }

    /// The sturdyref the exporter of `r` told before the answer that carried it, if it
    /// did (taken: it is told once).
    pub fn take_told_sturdyref(&mut self, r: &RemoteRef) -> Option<String> {
        let at = self.told.0.iter().position(|(told, _)| told == r)?;
        self.told.0.remove(at).map(|(_, uri)| uri)
    }

    /// The session of `conn` ended: what its peer told goes.
    pub(super) fn forget_told(&mut self, conn: ConnId) {
        self.told.0.retain(|(r, _)| r.conn() != conn);
    }
}
