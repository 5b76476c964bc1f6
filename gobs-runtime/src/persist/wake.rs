//! Waking a sleeping actor of a persistent vat: its kept portrait decoded again, with
//! the references in it reaching the same vats as at restore (see [`crate::Sleep`]).

use std::sync::Arc;

use crate::entry::{ActorEntry, Restored};
use crate::env::Env;
use crate::error::Error;
use crate::persist::context::{Directory, RestoreContext, with_restore};
use crate::portrait::ActorId;
use crate::vat::{Revive, VatShared};

/// What a sleepy vat rebuilds its actors with.
pub(super) struct Reviver {
    pub(super) env: Env,
    pub(super) directory: Directory,
    /// The store, as messages name it.
    pub(super) store_name: String,
}

impl Revive for Reviver {
    fn revive(
        &self,
        vat: &Arc<VatShared>,
        id: ActorId,
        entry: &'static ActorEntry,
        version: u32,
        args: &[u8],
    ) -> Result<Restored, Error> {
        let ctx = RestoreContext {
            vat: vat.clone(),
            directory: Some(self.directory.clone()),
            env: Some(self.env.clone()),
            expected: Vec::new(),
            // Actors whose maps keep entry portraits never sleep: none to hand over.
            entries: Some(Default::default()),
        };
        // The references in it were checked against their targets' types when the vat was
        // restored or when this portrait was saved: nothing to check again.
        let (restored, _) = with_restore(ctx, || entry.restore(version, args));
        restored.map_err(|e| Error::Restore {
            vat: vat.name.clone(),
            store: self.store_name.clone(),
            detail: format!(
                "waking actor {id} (a {}, asleep) from its saved portrait: {e}. Nothing was \
                 lost: the portrait stays in the store and the actor stays asleep; fix the env \
                 (or restore the store from a backup) and send again",
                entry.type_name
            ),
            source: Some(Arc::new(e)),
        })
    }
}
