//! Caretakers: revocable forwarders, so revoking a sturdyref cuts off the live references
//! enlivened from it too ([`Core::bind_revocable`]).
//!
//! A swiss number bound with [`Core::bind_swiss`] names the object itself: revoking it
//! stops new fetches, but a peer that fetched the object keeps a working reference (CapTP
//! cannot take one back). A caretaker (Goblins' name for the pattern) stands between: the
//! swiss number names a forwarder that passes every message on to the target, and
//! [`Core::revoke_swiss`] on that swiss number also switches the forwarder off, so every
//! reference to it — fetched before, passed on to third parties, or reached through a
//! sturdyref a holder minted for it — breaks with an error naming the revocation, and the
//! forwarder lets go of the target.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Core, swiss_key};
use super::{Cx, LocalObject};
use crate::captp::{CapRef, LocalRef, ObjId, Term};
use crate::syrup::Value;

/// What a message to a revoked caretaker is answered with.
pub const CARETAKER_REVOKED: &str = "this reference was revoked: the sturdyref it came from \
     was taken back by the node that issued it, and with it every reference to the object; \
     ask whoever gave it to you for a new one";

/// Where a caretaker forwards to; `None` once it is revoked.
type Target = Arc<Mutex<Option<CapRef>>>;

/// The caretakers bound to swiss numbers, by the SHA-256 of their swiss number.
#[derive(Default)]
pub(crate) struct Caretakers {
    by_swiss: HashMap<[u8; 32], (ObjId, Target)>,
}

struct Caretaker {
    target: Target,
}

impl Caretaker {
    fn target(&self) -> Option<CapRef> {
        self.target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl LocalObject for Caretaker {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let Some(target) = self.target() else {
            return Err(Term::Data(Value::String(CARETAKER_REVOKED.into())));
        };
        let answer = cx.send(&target, args);
        // The caller's promise follows this one; nothing else needs it once it settled.
        cx.core.release(answer);
        Ok(Term::local(answer))
    }

    fn collected(&mut self, core: &mut Core) {
        let target = self
            .target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let_go(core, target);
    }
}

/// The caretaker held a local object: it may go now.
fn let_go(core: &mut Core, target: Option<CapRef>) {
    if let Some(CapRef::Local(l)) = target
        && !l.promise
    {
        core.unhold(l.id);
    }
}

impl Core {
    /// Binds `swiss` to a caretaker for `target` (local or remote) and returns the
    /// caretaker: every message to it goes on to `target`, its answer coming back, until
    /// [`Core::revoke_swiss`] takes `swiss` back. From then on every reference to the
    /// caretaker breaks with [`CARETAKER_REVOKED`] — the ones peers fetched before too,
    /// unlike a plain [`Core::bind_swiss`] — and the caretaker lets go of `target`.
    ///
    /// The caretaker forwards messages, not authority: what `target` returns or is passed
    /// reaches the other side as it is (it is not a membrane). It is not saved: a host
    /// with a `gobs_ocapn::persist::NodeStore` binds it again at startup, with the swiss
    /// number of its export name, as it would any named export.
    ///
    /// ```
    /// use gobs_ocapn_proto::captp::{CapRef, SessionConfig, Term};
    /// use gobs_ocapn_proto::locator::PeerLocator;
    /// use gobs_ocapn_proto::node::{CARETAKER_REVOKED, Core, Cx};
    /// use gobs_ocapn_proto::syrup::Value;
    ///
    /// let mut core = Core::new(PeerLocator::new("test", "me"), SessionConfig::default());
    /// let echo = core.spawn(Box::new(|_: &mut Cx<'_>, args: Vec<Term>| Ok(Term::List(args))));
    /// let caretaker = core.bind_revocable(b"a secret", CapRef::Local(echo));
    /// core.pin(caretaker); // this host keeps using it after the revocation
    /// let before = core.send(CapRef::Local(caretaker), vec![Term::str("hi")]);
    /// core.run();
    /// assert!(matches!(core.promise_state(before.id), Some(Ok(Term::List(_)))));
    ///
    /// assert!(core.revoke_swiss(b"a secret"));
    /// let after = core.send(CapRef::Local(caretaker), vec![Term::str("hi")]);
    /// core.run();
    /// assert_eq!(
    ///     core.promise_state(after.id),
    ///     Some(Err(Term::Data(Value::String(CARETAKER_REVOKED.into()))))
    /// );
    /// ```
    pub fn bind_revocable(&mut self, swiss: &[u8], target: CapRef) -> LocalRef {
        if let CapRef::Local(l) = &target
            && !l.promise
        {
            self.hold(l.id);
        }
        let target: Target = Arc::new(Mutex::new(Some(target)));
        let caretaker = self.spawn(Box::new(Caretaker {
            target: target.clone(),
        }));
        self.bind_swiss(swiss, caretaker);
        self.caretakers
            .by_swiss
            .insert(swiss_key(swiss), (caretaker.id, target));
        caretaker
    }

    /// `swiss` (whose SHA-256 is `key`), bound to `obj`, was revoked: if it was a
    /// caretaker's, the caretaker stops forwarding and lets go of its target.
    pub(crate) fn revoke_caretaker(&mut self, key: &[u8; 32], obj: ObjId) {
        let Some((id, target)) = self.caretakers.by_swiss.remove(key) else {
            return;
        };
        if id != obj {
            // The swiss number was bound to another object since: that caretaker's own
            // swiss number is gone already, and it stays as it is.
            return;
        }
        let old = target.lock().unwrap_or_else(PoisonError::into_inner).take();
        let_go(self, old);
    }
}
