//! Persistent vats: a vat that saves what each churn changed and comes back on restart.
//!
//! On first start the root constructor runs in the vat's first turn; on later starts the
//! roots are restored from the store and the constructor is not called. After every churn
//! the portraits of the actors it changed (and of any that just became reachable) go to
//! the store as one delta, *before* any message or answer of that churn leaves the vat: an
//! acknowledged churn is a saved churn. A churn that cannot be saved is rolled back.
//!
//! A lone persistent vat is a [`Registry`] of one vat: it saves and restores exactly as a
//! registry's vats do, into a store of its own.

use std::sync::Arc;

use crate::env::Env;
use crate::error::Error;
use crate::persist::registry::Registry;
use crate::persist::roots::Roots;
use crate::store::{IntoStore, Store, StoreError};
use crate::vat::{Sleep, Vat};

/// Spawns persistent vats that are not part of a [`Registry`] (tests, single-vat programs).
///
/// Its store holds this one vat. A store that holds one vat under another name (a file
/// converted from an older one-vat format, or a vat renamed since) is taken over: the vat
/// is renamed in one commit. A store holding several vats is a registry's: open it with
/// [`Registry::open`].
///
/// ```
/// use gobs_runtime::{PersistentVat, common_env, actor_lib::Cell, store::MemoryStore};
/// let store = MemoryStore::new();
/// let (vat, cell) = PersistentVat::builder("doc")
///     .env(common_env())
///     .store(store.clone())
///     .spawn(|| gobs_runtime::spawn(Cell::new(1.into())))
///     .unwrap();
/// cell.send().set(2.into()).wait().unwrap();
/// vat.shutdown();
/// // Later: the same store restores the cell; the constructor is not called.
/// let (vat, cell) = PersistentVat::builder("doc")
///     .env(common_env())
///     .store(store)
///     .spawn(|| -> gobs_runtime::Ref<Cell> { unreachable!() })
///     .unwrap();
/// assert_eq!(cell.send().get().wait().unwrap(), 2.into());
/// vat.shutdown();
/// ```
pub struct PersistentVat;

/// Settings of a persistent vat; see [`PersistentVat::builder`].
pub struct PersistentVatBuilder {
    name: String,
    env: Option<Env>,
    store: Option<Result<Box<dyn Store>, StoreError>>,
    sleep: Sleep,
}

impl PersistentVat {
    /// Starts describing persistent vat `name`.
    pub fn builder(name: impl Into<String>) -> PersistentVatBuilder {
        PersistentVatBuilder {
            name: name.into(),
            env: None,
            store: None,
            sleep: Sleep::Never,
        }
    }
}

impl PersistentVatBuilder {
    /// The actors this vat may hold (required).
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    /// Where its portraits go (required): a [`Store`], or a
    /// [`LogStore`](crate::store::LogStore) log.
    pub fn store(mut self, store: impl IntoStore) -> Self {
        self.store = Some(store.into_store());
        self
    }

    /// Which saved actors stay in memory between turns (default [`Sleep::Never`]).
    pub fn sleep(mut self, sleep: Sleep) -> Self {
        self.sleep = sleep;
        self
    }

    /// Starts the vat: builds the roots with `roots` on first start, restores them later.
    /// Blocks until the vat is up (call it from outside vats). The vat runs until it is
    /// shut down or its last handle is dropped; then its store is flushed and closed.
    pub fn spawn<R, F>(self, roots: F) -> Result<(Vat, R), Error>
    where
        R: Roots,
        F: FnOnce() -> R + Send + 'static,
    {
        let missing = |what: &'static str| Error::Builder {
            vat: self.name.clone(),
            missing: what,
        };
        let env = self.env.clone().ok_or_else(|| missing("env"))?;
        let store = self.store.ok_or_else(|| missing("store"))?;
        let store = store.map_err(|e| Error::Store {
            vat: self.name.clone(),
            source: Arc::new(e),
        })?;
        let registry = Registry::of_one(&self.name, store, env)?;
        registry.set_sleep(&self.name, self.sleep)?;
        registry.start_vat(&self.name, roots)
    }
}
