//! The objects a node hosts and the swiss numbers that name them: hosting, binding,
//! pinning and looking up.

use subtle::ConstantTimeEq;

use super::LocalObject;
use super::{Core, PromiseSlot, Slot, Work, swiss_key};
use crate::captp::{CapRef, LocalRef, ObjId, Term};

impl Core {
    /// Hosts an object. Once it has been exported, it lives as long as a peer (or a
    /// settled promise of this node) holds it: when every peer that imported it has let
    /// go (`op:gc-export`, or its session ended), the node drops it. Objects bound to a
    /// swiss number stay (the swiss table holds them, until [`Core::revoke_swiss`]), as do
    /// objects [`Core::pin`]ned — pin one whose reference the host keeps to use later.
    pub fn spawn(&mut self, obj: Box<dyn LocalObject>) -> LocalRef {
        let id = self.alloc();
        self.objects.insert(id, Slot::Object(obj));
        LocalRef { id, promise: false }
    }

    /// Makes `obj` reachable by `fetch` with this swiss number (and keeps it while a swiss
    /// number names it: see [`Core::spawn`], [`Core::revoke_swiss`]). Binding a swiss
    /// number again moves it to the new object; the old one is then kept no longer for
    /// its sake.
    pub fn bind_swiss(&mut self, swiss: &[u8], obj: LocalRef) {
        let key = swiss_key(swiss);
        self.revoked.forget(&key);
        let old = self.swiss.insert(key, (swiss.to_vec(), obj));
        match old {
            Some((_, old)) if old.id == obj.id => {}
            old => {
                *self.bound.entry(obj.id).or_default() += 1;
                if let Some((_, old)) = old {
                    self.unbind(old.id);
                }
            }
        }
    }

    /// Keeps `obj` even when no peer holds it (see [`Core::spawn`]).
    pub fn pin(&mut self, obj: LocalRef) {
        self.pinned.insert(obj.id);
    }

    /// Undoes [`Core::pin`]: the object goes once no peer, no promise and no swiss number
    /// holds it (at once, if none does now).
    pub fn unpin(&mut self, obj: LocalRef) {
        if self.pinned.remove(&obj.id) && !self.bound.contains_key(&obj.id) {
            self.queue.push_back(Work::Released {
                obj: obj.id,
                answer: false,
            });
        }
    }

    /// Looks a swiss number up, comparing it in constant time. (The table is keyed by the
    /// SHA-256 of the swiss number, so the lookup's timing says nothing about the secret.)
    pub fn lookup_swiss(&self, swiss: &[u8]) -> Option<LocalRef> {
        let (stored, obj) = self.swiss.get(&swiss_key(swiss))?;
        bool::from(stored.as_slice().ct_eq(swiss)).then_some(*obj)
    }

    pub(super) fn alloc(&mut self) -> ObjId {
        let id = ObjId(self.next_obj);
        self.next_obj += 1;
        id
    }

    /// How many objects and promises the node holds (for leak checks and monitoring).
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// What `r` stands for now: the local object a fulfilled promise (or a chain of them)
    /// resolved to, else `r` itself.
    pub fn settled_target(&self, mut r: LocalRef) -> LocalRef {
        for _ in 0..64 {
            match self.objects.get(&r.id) {
                Some(Slot::Promise(PromiseSlot {
                    settled: Some(Ok(Term::Ref(CapRef::Local(q)))),
                    ..
                })) if *q != r => r = *q,
                _ => break,
            }
        }
        r
    }
}
