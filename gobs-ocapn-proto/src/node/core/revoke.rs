//! Taking a swiss number back: after [`Core::revoke_swiss`] it enlivens nothing, and a
//! `fetch` of it breaks with an error that says it was revoked. References peers already
//! hold are not revoked (see [`Core::revoke_swiss`]), unless the swiss number names a
//! caretaker ([`Core::bind_revocable`]).

use std::collections::{HashSet, VecDeque};

use subtle::ConstantTimeEq;

use super::{Core, RevokeHook, Work, err_term, swiss_key};
use crate::captp::{LocalRef, ObjId, Term};

/// How many revoked swiss numbers a node remembers (their SHA-256, 32 bytes each), so a
/// fetch of one is refused as revoked rather than as unknown. Older ones, and every one
/// revoked before a restart, are refused as unknown: either way they name no object.
pub const REVOKED_KEPT: usize = 4096;

/// The SHA-256 of the swiss numbers revoked lately, at most [`REVOKED_KEPT`] of them.
#[derive(Default)]
pub(super) struct RevokedSwiss {
    order: VecDeque<[u8; 32]>,
    set: HashSet<[u8; 32]>,
}

impl RevokedSwiss {
    fn remember(&mut self, key: [u8; 32]) {
        if self.set.insert(key) {
            self.order.push_back(key);
        }
        while self.order.len() > REVOKED_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// The swiss number is bound again: it is no longer revoked.
    pub(super) fn forget(&mut self, key: &[u8; 32]) {
        self.set.remove(key);
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.set.contains(key)
    }
}

impl Core {
    /// Takes a swiss number back, whether the host bound it ([`Core::bind_swiss`]) or the
    /// node minted it for a peer (`gobs:sturdyref`): from now on it enlivens nothing, and a
    /// `fetch` of it breaks with an error saying it was revoked (the latest
    /// [`REVOKED_KEPT`] are remembered for that; older ones, and any revoked before a
    /// restart, are refused as unknown). Returns whether the swiss number named an object;
    /// the [`Core::on_revoke`] hook is told when it did.
    ///
    /// **Live references are not revoked.** A peer that fetched the object before keeps
    /// its reference, and it keeps working: CapTP has no way to take a live reference
    /// back (Goblins does the same, and uses revoker/caretaker objects for that). The
    /// object is no longer kept for this swiss number's sake: it goes, like any export,
    /// once no session, promise or other swiss number holds it and the host did not
    /// [`Core::pin`] it. A peer still holding it may ask for a new sturdyref to it
    /// (`gobs:sturdyref`), since a sturdyref is the durable form of an authority the
    /// reference already gives. To cut live holders off too, bind the swiss number with
    /// [`Core::bind_revocable`] (a caretaker): revoking it then breaks every reference.
    ///
    /// The object's release is queued: it happens at the next [`Core::run`] (which
    /// the tokio shell's `Node::with_core` calls after its closure). A swiss number revoked
    /// here only comes back after a restart if the host binds it again: with a
    /// `gobs_ocapn::persist::NodeStore` attached the store forgets it too, and
    /// its `NodeStore::revoke` waits until that is committed.
    ///
    /// ```
    /// use gobs_ocapn_proto::captp::{SessionConfig, Term};
    /// use gobs_ocapn_proto::locator::PeerLocator;
    /// use gobs_ocapn_proto::node::{Core, Cx};
    ///
    /// let mut core = Core::new(PeerLocator::new("test", "me"), SessionConfig::default());
    /// let obj = core.spawn(Box::new(|_: &mut Cx<'_>, args: Vec<Term>| Ok(Term::List(args))));
    /// core.bind_swiss(b"a secret", obj);
    /// assert!(core.revoke_swiss(b"a secret"));
    /// assert!(core.is_revoked(b"a secret"));
    /// assert_eq!(core.lookup_swiss(b"a secret"), None);
    /// assert!(!core.revoke_swiss(b"a secret"), "already revoked");
    /// core.run();
    /// assert_eq!(core.object_count(), 0, "nothing held it any more");
    /// ```
    pub fn revoke_swiss(&mut self, swiss: &[u8]) -> bool {
        let key = swiss_key(swiss);
        let obj = match self.swiss.get(&key) {
            Some((stored, obj)) if bool::from(stored.as_slice().ct_eq(swiss)) => *obj,
            _ => return false,
        };
        self.swiss.remove(&key);
        if self
            .minted
            .get(&obj.id)
            .is_some_and(|m| bool::from(m.as_slice().ct_eq(swiss)))
        {
            // Asked again, a holder of the object gets a new swiss number.
            self.minted.remove(&obj.id);
        }
        self.revoked.remember(key);
        self.unbind(obj.id);
        self.revoke_caretaker(&key, obj.id);
        tracing::info!(object = obj.id.0, "swiss number revoked");
        if let Some(mut hook) = self.on_revoke.take() {
            hook(swiss);
            self.on_revoke = Some(hook);
        }
        true
    }

    /// Calls `hook` with every swiss number [`Core::revoke_swiss`] takes back, so the host
    /// can forget it in what it saves (`gobs_ocapn::persist::NodeStore::attach` sets one).
    pub fn on_revoke(&mut self, hook: RevokeHook) {
        self.on_revoke = Some(hook);
    }

    /// Whether this node revoked `swiss` lately (and has not bound it again since).
    pub fn is_revoked(&self, swiss: &[u8]) -> bool {
        self.lookup_swiss(swiss).is_none() && self.revoked.contains(&swiss_key(swiss))
    }

    /// The object a `fetch` of `swiss` gives, or the error to break the fetch with.
    pub(crate) fn fetch_swiss(&self, swiss: &[u8]) -> Result<LocalRef, Term> {
        if let Some(obj) = self.lookup_swiss(swiss) {
            return Ok(obj);
        }
        if self.revoked.contains(&swiss_key(swiss)) {
            return Err(err_term(super::SWISS_REVOKED));
        }
        Err(err_term(super::SWISS_UNKNOWN))
    }

    /// One swiss number naming `obj` went; without another (or a pin), the object goes
    /// once no peer and no promise holds it.
    pub(super) fn unbind(&mut self, obj: ObjId) {
        let Some(n) = self.bound.get_mut(&obj) else {
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        self.bound.remove(&obj);
        if !self.pinned.contains(&obj) {
            self.queue.push_back(Work::Released { obj, answer: false });
        }
    }
}
