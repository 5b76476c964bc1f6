//! Destroying a registry's vats, and forgetting destroyed vats nothing refers to.

use std::sync::Arc;

use crate::error::Error;
use crate::persist::gone::Gone;
use crate::persist::registry::{Registry, Shared};
use crate::promise::Promise;
use crate::store::{RegistryCommit, VatWrite};
use crate::vat::VatShared;

impl Registry {
    /// Stops vat `name` (after the messages it already has) and removes it from the store,
    /// in one commit. Works on broken vats too. The promise settles once it is gone.
    pub fn destroy_vat(&self, name: &str) -> Promise<()> {
        let registry = self.clone();
        let name = name.to_string();
        let (promise, resolver) = Promise::pair();
        let work = move || match registry.destroy_now(&name) {
            Ok(()) => resolver.fulfill(()),
            Err(e) => resolver.break_with(e),
        };
        // Joining a vat takes a thread of its own (never a turn).
        if let Err(e) = std::thread::Builder::new()
            .name("gobs-destroy-vat".into())
            .spawn(work)
        {
            return Promise::broken(Error::Start {
                vat: self.inner.describe.clone(),
                detail: format!("cannot start a thread to destroy a vat: {e}"),
            });
        }
        promise
    }

    fn destroy_now(&self, name: &str) -> Result<(), Error> {
        let running = self.lock().remove(name);
        if let Some(shared) = &running {
            shared.request_stop();
            shared.join();
        }
        let stand_in = running.unwrap_or_else(|| {
            self.gone()
                .get(name)
                .and_then(Gone::vat)
                .unwrap_or_else(|| VatShared::stopped(name.to_string()))
        });
        {
            let mut sh = self.shared();
            let Shared {
                store,
                catalog,
                images,
                dropped,
                ..
            } = &mut *sh;
            let store = store.as_mut().ok_or_else(|| self.closed(name))?;
            let names = self.names().pending();
            let upto = names.last().map_or(0, |(id, _)| *id as usize + 1);
            store
                .commit(&RegistryCommit {
                    writes: vec![(name, VatWrite::Drop)],
                    names,
                })
                .map_err(|source| Error::Store {
                    vat: name.to_string(),
                    source: Arc::new(source),
                })?;
            self.names().committed(upto);
            catalog.remove(name);
            images.remove(name);
            dropped.insert(name.to_string());
        }
        self.keep_destroyed(name, &stand_in);
        Ok(())
    }

    /// Records the stand-in of destroyed vat `name` (for as long as references to it live),
    /// and now and then forgets the destroyed vats nothing refers to any more: their
    /// stand-ins and their names in `dropped`. Sweeping when the table's size reaches a
    /// power of two keeps the cost per destroy constant.
    pub(super) fn keep_destroyed(&self, name: &str, stand_in: &Arc<VatShared>) {
        let mut gone = self.gone();
        gone.insert(name.to_string(), Gone::destroyed(stand_in));
        if gone.len() < 64 || !gone.len().is_power_of_two() {
            return;
        }
        let mut forgotten = Vec::new();
        gone.retain(|name, g| {
            let keep = g.broken.is_some() || g.vat().is_some();
            if !keep {
                forgotten.push(name.clone());
            }
            keep
        });
        let mut sh = self.shared();
        for name in &forgotten {
            sh.dropped.remove(name);
        }
    }
}
