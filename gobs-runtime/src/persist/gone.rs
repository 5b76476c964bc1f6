//! Stopped stand-ins for a registry's vats that cannot run (broken, or destroyed).

use std::sync::{Arc, Weak};

use crate::vat::VatShared;

/// A stopped stand-in for a vat that cannot run.
///
/// A broken vat's stand-in is kept: it is listed and reported until the vat is destroyed.
/// A destroyed vat's lives only as long as some reference to it does (a send through one
/// breaks, naming the vat); once none is left the entry goes, so a process that creates
/// and destroys vats all day does not keep one per vat for ever.
pub(super) struct Gone {
    vat: GoneVat,
    /// Why; `None` for a destroyed vat (not broken, just gone).
    pub(super) broken: Option<String>,
}

enum GoneVat {
    Kept(Arc<VatShared>),
    WhileReferenced(Weak<VatShared>),
}

impl Gone {
    pub(super) fn broken(shared: Arc<VatShared>, reason: String) -> Gone {
        Gone {
            vat: GoneVat::Kept(shared),
            broken: Some(reason),
        }
    }

    pub(super) fn destroyed(shared: &Arc<VatShared>) -> Gone {
        Gone {
            vat: GoneVat::WhileReferenced(Arc::downgrade(shared)),
            broken: None,
        }
    }

    /// The stand-in, unless it was a destroyed vat's and nothing refers to it any more.
    pub(super) fn vat(&self) -> Option<Arc<VatShared>> {
        match &self.vat {
            GoneVat::Kept(shared) => Some(shared.clone()),
            GoneVat::WhileReferenced(weak) => weak.upgrade(),
        }
    }
}
