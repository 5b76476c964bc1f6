//! How the gateway serves each machine's registration and attach actors
//! ([`super::hob_actors`]): exported on its node under their swiss numbers, each given the
//! caller's proven location and answering refusals as text; and what it does when they
//! tell it (a [`Watcher`]): the machine's session is up, or an attach was refused as a
//! conflict, shown on the machine.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use data_encoding::BASE64URL_NOPAD;
use gobs_ocapn::captp::{CapRef, ConnId};
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::vat::{ExportOptions, PeerErrors, export_actor_in};

use super::credential::{self, Conflict, ConflictKind};
use super::gateway::{Gateway, Inner, Reach, ReachChange};
use super::hob_actors::{Registration, Watcher};
use super::table_store::Bound;

/// How the registration and attach actors are exported (see [`super::hob_actors`]).
const EXPORTED: ExportOptions = ExportOptions {
    caller: true,
    errors: PeerErrors::Text,
};

/// The gateway as its actors' [`Watcher`]; it does nothing once the gateway is gone.
struct Watch(Weak<Inner>);

impl Watcher for Watch {
    fn up(&self, machine: &str, bindings: (CapRef, ConnId), again: bool) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let (g, machine) = (Gateway { inner }, machine.to_string());
        // Run at the turn's commit, inside the vat: the boss is told from the gateway's
        // runtime, as the watcher tells it of sessions that end.
        g.inner.runtime.clone().spawn(async move {
            if again {
                tracing::info!(machine, "machine attached again");
            } else {
                tracing::info!(machine, "machine registered over OCapN");
            }
            g.set_live(&machine, Reach::Up(SystemTime::now()), Some(bindings));
        });
    }

    fn conflict(&self, machine: &str, kind: ConflictKind, from: Option<&PeerLocator>) -> String {
        match self.0.upgrade() {
            Some(inner) => Gateway { inner }.refuse_conflict(machine, kind, from),
            None => "the boss is shutting down; try again".into(),
        }
    }
}

impl Gateway {
    /// Binds a machine's registration and attach objects under their swiss numbers; a
    /// spent registration (no attach object) is bound to its refusal.
    pub(super) fn bind(&self, b: &Bound) {
        let Some((attach, attach_swiss)) = &b.attach else {
            self.bind_refusal(&b.registration_swiss, &b.machine, b.state);
            return;
        };
        let (Ok(reg), Ok(att)) = (
            BASE64URL_NOPAD.decode(b.registration_swiss.as_bytes()),
            BASE64URL_NOPAD.decode(attach_swiss.as_bytes()),
        ) else {
            tracing::error!(
                machine = b.machine,
                "the machine's swiss numbers in the gateway table are not base64url"
            );
            return;
        };
        // Linked before they are bound, so a machine's first call finds the gateway.
        let watch: Arc<dyn Watcher> = Arc::new(Watch(Arc::downgrade(&self.inner)));
        let _ = b
            .registration
            .send_with(move |r: &Registration| r.link(watch));
        let (registration, attach) = (b.registration.clone(), attach.clone());
        let node = self.inner.node.clone();
        self.inner.node.post(move |core| {
            let r = export_actor_in(&node, core, registration, EXPORTED);
            core.bind_swiss(&reg, r);
            let a = export_actor_in(&node, core, attach, EXPORTED);
            core.bind_swiss(&att, a);
        });
    }

    /// The attaches to machine `machine` refused as conflicts (a copy of its state), as the
    /// machine shows them; `None` if there were none since the gateway started.
    pub fn conflict(&self, machine: &str) -> Option<String> {
        self.lock_conflicts()
            .get(machine)
            .map(|c| c.describe(machine))
    }

    pub(super) fn lock_conflicts(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Conflict>> {
        self.inner
            .conflicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records a refused attach to machine `machine` (logged at most once a period per
    /// source) and answers the refusal for its client. Called in the attach actor's turn,
    /// which fails: the boss is told from the gateway's runtime, outside it.
    fn refuse_conflict(
        &self,
        machine: &str,
        kind: ConflictKind,
        from: Option<&PeerLocator>,
    ) -> String {
        let from = from.map_or_else(
            || "a peer that proved no location".to_string(),
            credential::place,
        );
        let (log, shown, refusal) = {
            let mut conflicts = self.lock_conflicts();
            let before = conflicts.remove(machine);
            let (conflict, log) = Conflict::note(before, kind, &from, SystemTime::now());
            let shown = conflict.describe(machine);
            let refusal = conflict.refusal(machine);
            conflicts.insert(machine.to_string(), conflict);
            (log, shown, refusal)
        };
        if log {
            tracing::warn!(machine, "{shown}");
            let (g, machine) = (self.clone(), machine.to_string());
            self.inner
                .runtime
                .spawn(async move { g.tell_reach(&machine, ReachChange::Conflict(shown)) });
        }
        refusal
    }
}
