//! [`Route`]: how a grant's calls reach machines, given to the [`ShareBook`] by the process
//! that serves the grants: the same path the command line's `run`, `put-file` and
//! `get-file` take ([`crate::backend::route::MachineRoute`]).
//!
//! [`ShareBook`]: super::saved::ShareBook

use std::sync::{Arc, OnceLock};

use crate::model::{BackendError, Cancel, MachineInfo, MachineName};
use crate::ops::{MachineCall, Response};

/// How a grant's calls reach its machine: blocking (it runs on a thread of its own, off
/// the vat).
pub trait Route: Send + Sync {
    /// Has the machine `call` names do it (what `Backend::on_machine` does).
    fn on_machine(
        &self,
        cancel: &Cancel,
        call: Arc<dyn MachineCall>,
    ) -> Result<Response, BackendError>;
    /// Machine `name`'s record (what `Backend::machine` does).
    fn machine(&self, name: &MachineName) -> Result<MachineInfo, BackendError>;
}

/// The route a book was given, if any.
#[derive(Default, Clone)]
pub struct RouteCell(Arc<OnceLock<Arc<dyn Route>>>);

impl RouteCell {
    /// Takes `route` (the first one given stays).
    pub fn set(&self, route: Arc<dyn Route>) {
        let _ = self.0.set(route);
    }

    /// The route, if one was given.
    pub fn get(&self) -> Option<Arc<dyn Route>> {
        self.0.get().cloned()
    }
}

impl std::fmt::Debug for RouteCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let given = self.0.get().is_some();
        write!(f, "RouteCell(given: {given})")
    }
}
