//! The registry as its vats see it: it names vats for portraits and finds them again,
//! and takes their commits.

use std::any::Any;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::far::FarLink;
use crate::persist::churn::{VatHome, launch};
use crate::persist::context::VatDirectory;
use crate::persist::gone::Gone;
use crate::persist::names::NameTable;
use crate::persist::registry::{Mode, Origin, Registry, Shared};
use crate::persist::store_kind::write_marker;
use crate::store::{RegistryCommit, StoreError, StoreErrorKind, VatWrite};
use crate::vat::VatShared;

impl VatDirectory for Registry {
    fn name_of(&self, vat: &Arc<VatShared>) -> Option<String> {
        let running = self.lock().get(&vat.name).is_some_and(|s| s.id == vat.id);
        if running
            || self
                .gone()
                .get(&vat.name)
                .and_then(Gone::vat)
                .is_some_and(|g| g.id == vat.id)
        {
            Some(vat.name.clone())
        } else {
            None
        }
    }

    fn find(&self, name: &str) -> Result<Arc<VatShared>, String> {
        if let Some(shared) = self.lock().get(name).filter(|s| !s.is_stopped()).cloned() {
            return Ok(shared);
        }
        if let Some(shared) = self.gone().get(name).and_then(Gone::vat) {
            return Ok(shared);
        }
        let status = self.shared().catalog.get(name).copied();
        let reason = match status {
            Some(true) => {
                // On its worker: this may run inside another vat's restore.
                let start = |shared: &Arc<VatShared>, launching| {
                    launch::<(), fn() -> Result<(), crate::Error>>(shared, launching, None)
                };
                match self.begin(name, Mode::Start, start) {
                    Ok((vat, _roots)) => return Ok(vat.shared),
                    // Whatever keeps it from starting, the reference comes back broken.
                    Err(e) => Some(e.to_string()),
                }
            }
            Some(false) => Some(
                "it was spawned, but the process stopped before the vat's first churn was saved, \
                 so nothing of it was kept"
                    .to_string(),
            ),
            None => {
                tracing::warn!(
                    "a saved reference points into vat \"{name}\", which {} does not hold \
                     (destroyed): it comes back as a reference to a stopped vat",
                    self.inner.describe
                );
                // Saving that reference again must not list the vat anew.
                self.shared().dropped.insert(name.to_string());
                None
            }
        };
        let stand_in = VatShared::stopped(name.to_string());
        if let Some(reason) = reason {
            self.mark_broken(&stand_in, reason);
        } else {
            self.keep_destroyed(name, &stand_in);
        }
        Ok(stand_in)
    }

    fn names(&self) -> &Mutex<NameTable> {
        self.name_table()
    }

    fn far_link(&self) -> FarLink {
        self.inner.far.clone()
    }
}

impl VatHome for Registry {
    fn commit_vat(
        &self,
        name: &str,
        write: VatWrite<'_>,
        refers: &[String],
    ) -> Result<(), StoreError> {
        let mut sh = self.shared();
        let Shared {
            store,
            catalog,
            dropped,
            marker,
            ..
        } = &mut *sh;
        let Some(store) = store.as_mut() else {
            return Err(StoreError::Poisoned {
                path: PathBuf::from(&self.inner.describe),
                cause: "the registry was shut down".to_string(),
                cause_kind: StoreErrorKind::Io,
            });
        };
        let mut seen: HashSet<&str> = HashSet::new();
        let mut writes: Vec<(&str, VatWrite<'_>)> = Vec::with_capacity(refers.len() + 1);
        for other in refers {
            if other != name
                && !catalog.contains_key(other)
                && !dropped.contains(other)
                && seen.insert(other)
            {
                writes.push((other, VatWrite::List));
            }
        }
        writes.push((name, write));
        let names = self.names().pending();
        let upto = names.last().map_or(0, |(id, _)| *id as usize + 1);
        // Written now, durable once the ticket is waited on, outside the store's lock, so
        // that vats committing at once share fsyncs.
        let ticket = store.commit_deferred(&RegistryCommit { writes, names })?;
        self.names().committed(upto);
        if let Some(path) = marker.take()
            && let Origin::Dir(_, kind) = &self.inner.origin
        {
            write_marker(&path, kind.file_name())?;
        }
        for other in seen {
            catalog.insert(other.to_string(), false);
        }
        catalog.insert(name.to_string(), true);
        drop(sh);
        match ticket {
            Some(ticket) => ticket.wait(),
            None => Ok(()),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        match self.shared().store.as_mut() {
            Some(store) => store.flush(),
            None => Ok(()),
        }
    }

    fn describe_store(&self) -> String {
        self.inner.describe.clone()
    }

    fn mark_broken(&self, shared: &Arc<VatShared>, reason: String) {
        tracing::warn!(
            vat = %shared.name,
            "vat \"{}\" of {} cannot be restored: {reason}. References to it are broken; the \
             other vats work. Destroy it to remove it, or restore the store from a backup",
            shared.name,
            self.inner.describe
        );
        let mut vats = self.lock();
        if vats.get(&shared.name).is_some_and(|s| s.id == shared.id) {
            vats.remove(&shared.name);
        }
        self.gone()
            .insert(shared.name.clone(), Gone::broken(shared.clone(), reason));
    }

    fn vat_stopped(&self, vat: &str) {
        // A lone vat's store is its own: it closes (and unlocks) when the vat stops.
        if matches!(self.inner.origin, Origin::OneVat) {
            self.lock().remove(vat);
            self.shared().store.take();
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
