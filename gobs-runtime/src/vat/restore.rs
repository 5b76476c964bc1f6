//! Room for a restore: a persistent vat about to place its saved actors reserves its
//! tables once, rather than growing them (rehashing every entry) as the actors come.

use crate::vat::core::VatCore;
use crate::vat::shared::lock;

impl VatCore {
    /// Reserves room for `actors` restored actors and about as many reference holds (each
    /// saved actor is most often referred to once). A sleepy vat keeps few of them in
    /// memory: it reserves nothing.
    pub(crate) fn reserve_restored(&self, actors: usize) {
        if self.is_sleepy() {
            return;
        }
        self.slots.borrow_mut().reserve(actors);
        lock(&self.shared.holds).reserve(actors);
    }
}
