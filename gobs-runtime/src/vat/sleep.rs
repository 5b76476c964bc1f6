//! Sleepy actors: a persistent vat may keep only some of its saved actors in memory.
//!
//! A vat started with a [`Sleep`] strategy other than [`Sleep::Never`] keeps, for each
//! actor it may put to sleep, the portrait the store holds for it (in its [`Dormancy`]).
//! Between turns it drops the in-memory object of the actors its strategy sends to sleep;
//! their ids, their references and the store stay as they were. The next lookup of a sleeping
//! actor — any message or call reaches its actor through [`VatCore::find`] — rebuilds it
//! from that portrait first, inside the turn that needs it, so senders see no difference
//! and message order and turns are those of an awake actor.
//!
//! An actor may sleep only when it is *saved and idle*: the store holds its last portrait
//! (every change a churn made to it was saved: changes are saved before the turn
//! commits, and a churn that cannot be saved is rolled back), no turn is running, and no
//! one holds its slot (a near call in progress). An actor whose map keeps its entries as
//! portraits of their own ([`JournalMap`](crate::JournalMap)) never sleeps: its portrait
//! alone does not rebuild it.

use std::rc::Rc;

use crate::entry::{ActorEntry, ActorSlot};
use crate::error::Error;
use crate::portrait::ActorId;
use crate::vat::core::VatCore;
use crate::vat::dormancy::{Dormancy, Revive, Sleep};
use crate::vat::shared::lock;

impl VatCore {
    /// Makes this vat sleepy (before it restores anything); `Never` leaves it as it is.
    pub(crate) fn install_sleep(&self, strategy: Sleep, revive: Rc<dyn Revive>) {
        if strategy == Sleep::Never {
            return;
        }
        *self.dormancy.borrow_mut() = Some(Box::new(Dormancy::new(strategy, revive)));
        self.sleepy.set(true);
    }

    /// Whether this vat puts actors to sleep.
    pub(crate) fn is_sleepy(&self) -> bool {
        self.sleepy.get()
    }

    /// Notes a lookup of awake actor `id` (it is recently used).
    #[inline]
    pub(crate) fn note_use(&self, id: ActorId) {
        if self.sleepy.get()
            && let Ok(mut d) = self.dormancy.try_borrow_mut()
            && let Some(d) = d.as_mut()
        {
            d.used.push(id);
        }
    }

    /// Places a restored actor asleep: only its portrait is kept. False if it cannot
    /// sleep (its portrait is too large to keep): place it awake.
    pub(crate) fn place_asleep(
        &self,
        id: ActorId,
        entry: &'static ActorEntry,
        version: u32,
        args: &[u8],
    ) -> bool {
        let mut d = self.dormancy.borrow_mut();
        d.as_mut()
            .and_then(|d| d.kept.put(id, entry, version, args, true))
            .is_some()
    }

    /// Keeps the portrait the store now holds for actor `id` (a churn saved it).
    pub(crate) fn keep_saved(
        &self,
        id: ActorId,
        entry: &'static ActorEntry,
        version: u32,
        args: &[u8],
    ) {
        let mut d = self.dormancy.borrow_mut();
        let Some(d) = d.as_mut() else { return };
        // Asleep only in a full snapshot, which wakes each actor to encode it and puts
        // it back to sleep: the portrait is the same.
        let asleep = d.kept.is_asleep(id);
        if d.kept.put(id, entry, version, args, asleep).is_none() {
            d.kept.remove(id);
        }
        d.used.push(id);
    }

    /// Actor `id` is no longer saved (no root reaches it), or was freed: it cannot sleep
    /// any more. A sleeping one that a reference still names wakes now, so that it
    /// lives on as an unsaved actor; one that nothing names is gone.
    pub(crate) fn forget_saved(&self, id: ActorId) {
        if !self.sleepy.get() {
            return;
        }
        // Not locked while it wakes: decoding its references takes that lock.
        let held = self.is_asleep(id)
            && lock(&self.shared.holds)
                .get(&id)
                .is_some_and(|w| w.strong_count() > 0);
        if held && let Err(e) = self.wake(id) {
            tracing::error!(vat = %self.shared.name, "{e}");
        }
        let mut d = self.dormancy.borrow_mut();
        let Some(d) = d.as_mut() else { return };
        d.kept.remove(id);
        d.recent.remove(&id);
    }

    /// The entry of sleeping actor `id`, if it sleeps.
    pub(crate) fn asleep_entry(&self, id: ActorId) -> Option<&'static ActorEntry> {
        if !self.sleepy.get() {
            return None;
        }
        let d = self.dormancy.borrow();
        let (view, asleep) = d.as_ref()?.kept.get(id)?;
        asleep.then_some(view.entry)
    }

    /// The actors whose portraits are kept, awake or asleep.
    pub(crate) fn kept_ids(&self) -> Vec<ActorId> {
        self.dormancy
            .borrow()
            .as_ref()
            .map_or_else(Vec::new, |d| d.kept.ids())
    }

    /// How many actors sleep.
    pub(crate) fn asleep_count(&self) -> usize {
        self.dormancy
            .borrow()
            .as_ref()
            .map_or(0, |d| d.kept.asleep())
    }

    /// Whether actor `id` sleeps.
    pub(crate) fn is_asleep(&self, id: ActorId) -> bool {
        self.sleepy.get()
            && self
                .dormancy
                .borrow()
                .as_ref()
                .is_some_and(|d| d.kept.is_asleep(id))
    }

    /// Drops the reference holds that restoring actors asleep made and let go of (each
    /// was decoded, to learn its references, then dropped). Until the vat's first turn
    /// collects them they would pile up: a hold and an entry in the vat's map of holds
    /// per referenced actor. Only sleeping actors' holds go; releases of awake actors
    /// stay for that first collection.
    pub(crate) fn prune_restore_holds(&self) {
        let mut releases = self.releases.borrow_mut();
        if releases.is_empty() {
            return;
        }
        let slots = self.slots.borrow();
        let mut holds = lock(&self.shared.holds);
        releases.retain(|id| {
            if slots.contains_key(&id.0) {
                return true;
            }
            if holds.get(id).is_some_and(|w| w.strong_count() == 0) {
                holds.remove(id);
            }
            false
        });
        if holds.capacity() > 64 && holds.len() < holds.capacity() / 4 {
            holds.shrink_to_fit();
        }
    }

    /// Puts actor `id` back to sleep at once, if it may sleep (a snapshot woke it).
    pub(crate) fn sleep_again(&self, id: ActorId) {
        drop(self.put_to_sleep(id));
    }

    /// Rebuilds sleeping actor `id` from its kept portrait and places it awake. `Ok(None)`
    /// if it does not sleep. A portrait that does not rebuild is an error naming the vat
    /// and the actor; the portrait stays kept (and stored), so nothing is lost.
    #[cold]
    pub(crate) fn wake(&self, id: ActorId) -> Result<Option<Rc<ActorSlot>>, Box<Error>> {
        let (revive, entry, version, args) = {
            let d = self.dormancy.borrow();
            let Some(d) = d.as_ref() else {
                return Ok(None);
            };
            match d.kept.get(id) {
                Some((view, true)) => (
                    d.revive.clone(),
                    view.entry,
                    view.version,
                    view.args.to_vec(),
                ),
                _ => return Ok(None),
            }
        };
        // Nothing is borrowed while the actor is rebuilt: its restore may spawn.
        let restored = revive
            .revive(&self.shared, id, entry, version, &args)
            .map_err(Box::new)?;
        // Epoch 0 is no turn's: its first mutation in this turn is snapshotted.
        let slot = restored.slot;
        slot.touched.set(0);
        self.insert(id, slot.clone());
        let mut d = self.dormancy.borrow_mut();
        if let Some(d) = d.as_mut() {
            d.kept.set_asleep(id, false);
            d.used.push(id);
        }
        Ok(Some(slot))
    }

    /// Between turns: puts to sleep the actors the strategy sends to sleep.
    pub(crate) fn settle_sleep(&self) {
        if !self.sleepy.get() {
            return;
        }
        let mut sleepers = Vec::new();
        {
            let mut cell = self.dormancy.borrow_mut();
            let Some(d) = cell.as_mut() else { return };
            let mut used = std::mem::take(&mut d.used);
            match d.strategy {
                Sleep::Never => used.clear(),
                Sleep::Always => sleepers.append(&mut used),
                Sleep::Lru { awake } => {
                    for id in used.drain(..) {
                        if d.kept.get(id).is_some_and(|(_, asleep)| !asleep) {
                            d.recent.remove(&id);
                            d.recent.insert(id, ());
                        }
                    }
                    while d.recent.len() > awake {
                        let Some((id, ())) = d.recent.pop_front() else {
                            break;
                        };
                        sleepers.push(id);
                    }
                }
            }
            // A turn of many calls does not keep its room for ever.
            used.shrink_to(1024);
            d.used = used;
        }
        if sleepers.is_empty() {
            return;
        }
        for id in sleepers {
            // Dropped here, with nothing borrowed: the actor's own drop may run code.
            drop(self.put_to_sleep(id));
        }
        let mut slots = self.slots_mut();
        if slots.capacity() > 64 && slots.len() < slots.capacity() / 4 {
            slots.shrink_to_fit();
        }
    }

    /// Takes awake actor `id` out of the table if it may sleep (saved and idle), and
    /// hands its slot back to be dropped.
    fn put_to_sleep(&self, id: ActorId) -> Option<Rc<ActorSlot>> {
        let mut cell = self.dormancy.borrow_mut();
        let d = cell.as_mut()?;
        if !matches!(d.kept.get(id), Some((_, false))) {
            return None;
        }
        let mut slots = self.slots_mut();
        // Held elsewhere (a near call in progress): it stays awake, tried again later.
        let idle = slots
            .get(&id.0)
            .is_some_and(|s| Rc::strong_count(s) == 1 && s.actor.try_borrow_mut().is_ok());
        if !idle {
            return None;
        }
        // Its slot's hold goes to the map, where releases and lookups still find it. The
        // map has room for one live hold: with another there, it stays awake.
        if let Some(hold) = slots.get(&id.0).and_then(|s| s.live_hold()) {
            let mut holds = lock(&self.shared.holds);
            if holds.get(&id).is_some_and(|w| w.strong_count() > 0) {
                return None;
            }
            holds.insert(id, hold);
        }
        d.kept.set_asleep(id, true);
        slots.remove(&id.0)
    }
}
