//! Where gobs-app's vats come from: the boss's, one per provider, one per machine. Every vat is
//! made, stopped and removed here, so that moving them to persistent vats (a persistence
//! registry, `gobs_runtime::persist::Registry`) changes this file and little else.
//!
//! Every vat is persistent: started with a *roots* closure that builds its root actors on
//! a first start only, and machine vats are spawned from inside a provider's turn.

use std::path::{Path, PathBuf};

use gobs_runtime::{Env, Error, Promise, Registry, Roots, StoreKind, Vat};

/// Where the vats' stores go, inside the state directory.
pub const VATS_DIR: &str = "vats";

/// Name of the boss's vat.
pub const BOSS_VAT: &str = "boss";

/// Name of provider `provider`'s vat.
pub fn provider_vat_name(provider: &str) -> String {
    format!("provider-{provider}")
}

/// Name of the vat of machine `machine` of provider `provider`: `machine-PROVIDER.MACHINE`.
/// Provider names have no `.` (the config refuses one), so the first `.` ends the
/// provider's name and no two (provider, machine) pairs share a vat name.
///
/// ```
/// use gobs_app::actors::vats::machine_vat_name;
/// assert_ne!(machine_vat_name("a", "b-c"), machine_vat_name("a-b", "c"));
/// ```
pub fn machine_vat_name(provider: &str, machine: &str) -> String {
    format!("machine-{provider}.{machine}")
}

/// The persistent vats of one state directory: a persistence registry whose one store
/// lives in `<state dir>/vats/`. A restart brings back the boss, the providers and
/// every machine, whatever order they are asked for in.
#[derive(Debug)]
pub struct AppVats {
    dir: PathBuf,
    registry: Registry,
}

impl AppVats {
    /// The vats of the state directory `dir`, restored with `env`, all in one store of
    /// `kind`. The stores' directory and files are made (or tightened to) owner-only first.
    /// A `vats/` written by an older release (one store per vat) is migrated first; the old
    /// files are kept in `vats/migrated-per-vat/`.
    pub fn open(dir: &Path, env: Env, kind: StoreKind) -> Result<AppVats, Error> {
        let vats_dir = dir.join(VATS_DIR);
        if let Some(evidence) = crate::config::state_dir::vats_gone(dir, &vats_dir) {
            return Err(Error::StoreMissing {
                store: vats_dir.display().to_string(),
                evidence,
                dir: dir.display().to_string(),
            });
        }
        crate::config::state_dir::private_dir_and_files(&vats_dir).map_err(|source| {
            Error::Store {
                vat: "(registry)".into(),
                source: std::sync::Arc::new(gobs_runtime::store::StoreError::Io {
                    op: "making private (0700/0600)",
                    path: vats_dir.clone(),
                    source,
                }),
            }
        })?;
        gobs_runtime::persist::migrate::migrate_per_vat_stores(&vats_dir, &kind)?;
        let registry = Registry::open(&vats_dir, env, kind)?;
        mark_made(dir);
        Ok(AppVats {
            dir: dir.to_path_buf(),
            registry,
        })
    }

    /// Vats whose stores live in memory (tests; nothing survives the process).
    pub fn in_memory(dir: &Path, env: Env) -> Result<AppVats, Error> {
        Ok(AppVats {
            dir: dir.to_path_buf(),
            registry: Registry::in_memory(env),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The persistence registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Starts vat `name`: on first start `roots` builds its root actors; later they are
    /// restored (and `roots` is not called). Blocks: call from outside vats.
    pub fn start_vat<R: Roots>(
        &self,
        name: &str,
        roots: impl FnOnce() -> R + Send + 'static,
    ) -> Result<(Vat, R), Error> {
        self.registry.start_vat(name, roots)
    }

    /// Stops every vat (each finishes its queue and flushes its store). Idempotent.
    pub fn shutdown(&self) {
        self.registry.shutdown();
        // A first start made the store: from now on, losing vats/ is refused.
        mark_made(&self.dir);
    }
}

fn mark_made(dir: &Path) {
    if let Err(e) = crate::config::state_dir::mark_vats_made(dir, &dir.join(VATS_DIR)) {
        tracing::warn!(
            "cannot write {}: {e}; a lost vats/ would not be noticed",
            dir.join(crate::config::state_dir::VATS_MARKER).display()
        );
    }
}

/// Inside a provider's turn: starts a machine's persistent vat, whose root actors `roots`
/// builds in a turn of the new vat. The promise resolves with the roots once they are built.
pub fn spawn_machine_vat<R: Roots>(
    name: &str,
    roots: impl FnOnce() -> R + Send + 'static,
) -> Result<(Vat, Promise<R>), Error> {
    current_registry()?.spawn_vat(name, roots)
}

fn current_registry() -> Result<Registry, Error> {
    Registry::current().ok_or_else(|| Error::NotInTurn {
        what: "making a machine vat",
        fix: "machine vats are made from a provider's turn in a persistent vat (a bug)",
    })
}

/// Stops machine vats and deletes their stores. Taken inside a provider's turn, used off
/// the vat (stopping a vat waits for it).
#[derive(Debug, Clone)]
pub struct VatRemover(Option<Registry>);

impl VatRemover {
    /// The remover for vats of the current turn's registry.
    pub fn current() -> VatRemover {
        VatRemover(Registry::current())
    }

    /// Stops `vat` (after the messages it already has) and deletes its store. Blocking:
    /// call from outside vats (e.g. in `spawn_blocking`).
    pub fn remove(&self, vat: &Vat) -> Result<(), Error> {
        match &self.0 {
            Some(registry) => registry.destroy_vat(vat.name()).wait(),
            None => {
                vat.shutdown();
                Ok(())
            }
        }
    }
}
