//! Room for a restore: a persistent vat about to place its saved actors reserves its
//! tables once, rather than growing them (rehashing every entry) as the actors come.

use std::any::TypeId;
use std::sync::Arc;

use crate::entry::ActorSlot;
use crate::portrait::ActorId;
use crate::vat::core::VatCore;
use crate::vat::shared::{Hold, VatShared};

impl VatCore {
    /// Reserves room for `actors` restored actors. (The references restored actors hold
    /// mostly take the holds their targets' slots keep, see [`VatCore::restored_hold`]:
    /// the vat's map of holds is not reserved.) A sleepy vat keeps few of them in memory:
    /// it reserves nothing.
    pub(crate) fn reserve_restored(&self, actors: usize) {
        if self.is_sleepy() {
            return;
        }
        self.slots_mut().reserve(actors);
    }

    /// The hold that the slot of actor `id`, already restored into this vat, keeps (made
    /// now if it keeps none), with the actor's type: what a reference decoded during the
    /// restore holds, as a spawn's first reference does. `None` when `vat` is another vat
    /// or `id` is not placed yet (a reference to an actor restored later, or asleep): the
    /// reference then takes its hold from the vat's map.
    pub(crate) fn restored_hold(
        &self,
        vat: &Arc<VatShared>,
        id: ActorId,
    ) -> Option<(Arc<Hold>, TypeId)> {
        if self.shared.id != vat.id {
            return None;
        }
        let slots = self.slots.borrow();
        let slot = slots.get(&id.0)?;
        Some((slot.hold(vat, id), ActorSlot::type_id(slot)))
    }
}
