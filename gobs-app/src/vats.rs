//! Where gobs-app's vats come from: the boss's, one per provider, one per machine. Every vat is
//! made, stopped and removed here, so that moving them to persistent vats (a persistence
//! registry, `gobs_runtime::persist::Registry`) changes this file and little else.
//!
//! Today the vats are plain [`Vat`]s, so nothing survives a restart; the functions already
//! have the registry's shapes: a vat is started with a *roots* closure that builds its root
//! actors (on a first start only, once persistent), and machine vats are spawned from inside
//! a provider's turn.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use gobs_runtime::{Error, Promise, Vat};

/// Name of the boss's vat.
pub const BOSS_VAT: &str = "boss";

/// Name of provider `provider`'s vat.
pub fn provider_vat_name(provider: &str) -> String {
    format!("provider-{provider}")
}

/// Name of the vat of machine `machine` of provider `provider`.
pub fn machine_vat_name(provider: &str, machine: &str) -> String {
    format!("machine-{provider}-{machine}")
}

/// The long-lived vats of one state directory (boss and providers), started from outside
/// vats by the backend.
// TODO(persist): hold a `Registry` (`Registry::open(dir.join("vats"), app_env()?, kind)`)
// instead of the list; `start_vat` becomes `registry.start_vat`, `shutdown` `registry.shutdown`.
#[derive(Debug)]
pub struct AppVats {
    dir: PathBuf,
    started: Mutex<Vec<Vat>>,
}

impl AppVats {
    /// The vats of the state directory `dir`.
    pub fn open(dir: &Path) -> Result<AppVats, Error> {
        Ok(AppVats {
            dir: dir.to_path_buf(),
            started: Mutex::new(Vec::new()),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts vat `name` with the actors `roots` builds in it, and returns both.
    /// Blocks until the roots are built: call from outside vats.
    pub fn start_vat<R: Send + 'static>(
        &self,
        name: &str,
        roots: impl FnOnce() -> R + Send + 'static,
    ) -> Result<(Vat, R), Error> {
        let vat = Vat::spawn(name)?;
        let built = match vat.run(roots) {
            Ok(built) => built,
            Err(e) => {
                vat.shutdown();
                return Err(e);
            }
        };
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(vat.clone());
        Ok((vat, built))
    }

    /// Stops every vat started here, newest first. Idempotent. Machine vats belong to their
    /// providers, which stop them (see `Provider`).
    pub fn shutdown(&self) {
        let vats =
            std::mem::take(&mut *self.started.lock().unwrap_or_else(PoisonError::into_inner));
        for vat in vats.iter().rev() {
            vat.shutdown();
        }
    }
}

/// Inside a provider's turn: starts a machine's vat, whose root actors `roots` builds in a
/// turn of the new vat. The promise resolves with the roots once they are built.
// TODO(persist): `Registry::current()` (error if none) `.spawn_vat(name, roots)`; the vat then
// starts when the calling turn commits, so a failed turn leaves no vat behind.
pub fn spawn_machine_vat<R: Send + 'static>(
    name: &str,
    roots: impl FnOnce() -> R + Send + 'static,
) -> Result<(Vat, Promise<R>), Error> {
    let vat = Vat::spawn(name)?;
    let built = vat.post(move || Ok(roots()));
    Ok((vat, built))
}

/// Stops machine vats and deletes what they keep. Taken inside a provider's turn, used
/// off the vat (stopping a vat waits for it).
#[derive(Debug, Clone)]
// TODO(persist): hold `Registry::current()`, and make `remove` call `registry.destroy_vat(name)`
// so the machine's store is deleted too.
pub struct VatRemover(());

impl VatRemover {
    /// The remover for vats of the current turn's registry.
    pub fn current() -> VatRemover {
        VatRemover(())
    }

    /// Stops `vat` (after the messages it already has) and forgets it. Blocking: call
    /// from outside vats (e.g. in `spawn_blocking`).
    pub fn remove(&self, vat: &Vat) -> Result<(), Error> {
        vat.shutdown();
        Ok(())
    }
}
