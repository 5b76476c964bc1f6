//! Checking an upgrade before it runs: every stored portrait restored under the current
//! code (its env's entries and their upgrade steps), from the image read into memory, so
//! nothing is written and no vat starts.
//!
//! Each actor is rebuilt as a restore would rebuild it — its entry looked up by name, its
//! upgrade steps run, its arguments decoded, its map entries handed to it, the types of
//! the local references it holds checked — and then dropped. Restore hooks
//! (`on_restore`) are not run: they act on the world (a provider starts listening).
//! References into other vats are checked to name a vat the store holds, without
//! starting it. A panicking upgrade step is a failure of its actor, not of the check.

use std::any::TypeId;
use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use super::StoreImage;
use crate::entry::ActorEntry;
use crate::env::Env;
use crate::persist::context::{Directory, EntrySource, RestoreContext, VatDirectory, with_restore};
use crate::persist::entries::{ENTRY_NAME, owner_of};
use crate::persist::names::NameTable;
use crate::portrait::{ActorId, Graph};
use crate::store::VatRecord;
use crate::vat::VatShared;

/// What [`StoreImage::check_upgrade`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpgradeReport {
    /// Actors checked (map entries count with their owner).
    pub checked: usize,
    /// Of those, saved at an older version than the code's (their upgrade steps ran).
    pub upgraded: usize,
    /// The actors (or whole vats) that would not restore, and why.
    pub failures: Vec<UpgradeFailure>,
}

/// One actor (or vat) that would not restore.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UpgradeFailure {
    /// Its vat.
    pub vat: String,
    /// The actor's id; `None` when the whole vat cannot be read.
    pub id: Option<u64>,
    /// Its saved type name.
    pub type_name: String,
    /// The version it was saved at.
    pub version: u32,
    /// Why it fails.
    pub reason: String,
}

/// Far references name vats; the check only asks that the store holds them.
struct Held {
    vats: BTreeSet<String>,
    names: Mutex<NameTable>,
}

impl VatDirectory for Held {
    fn name_of(&self, _vat: &Arc<VatShared>) -> Option<String> {
        None
    }

    fn find(&self, name: &str) -> Result<Arc<VatShared>, String> {
        if self.vats.contains(name) {
            Ok(VatShared::stopped(name.to_string()))
        } else {
            Err(format!(
                "a reference names vat \"{name}\", which the store does not hold"
            ))
        }
    }

    fn names(&self) -> &Mutex<NameTable> {
        &self.names
    }
}

impl StoreImage {
    /// Restores every stored portrait under `env` (see the module docs) and reports which
    /// would fail and why. Writes nothing.
    pub fn check_upgrade(&self, env: &Env) -> UpgradeReport {
        let mut report = UpgradeReport::default();
        let directory: Directory = Arc::new(Held {
            vats: self.vats.keys().cloned().collect(),
            names: Mutex::new(NameTable::loaded(self.names.clone())),
        });
        for (vat, record) in &self.vats {
            match record {
                VatRecord::Saved(graph) => check_vat(vat, graph, env, &directory, &mut report),
                VatRecord::Listed => {}
                VatRecord::Damaged(why) => report.failures.push(UpgradeFailure {
                    vat: vat.clone(),
                    id: None,
                    type_name: String::new(),
                    version: 0,
                    reason: format!("the vat cannot be read: {why}"),
                }),
            }
        }
        report
    }
}

fn check_vat(
    vat: &str,
    graph: &Graph,
    env: &Env,
    directory: &Directory,
    report: &mut UpgradeReport,
) {
    let shared = VatShared::stopped(vat.to_string());
    let mut owned: HashMap<ActorId, EntrySource> = HashMap::new();
    for (id, p) in graph.actors.iter().filter(|(_, p)| p.name == ENTRY_NAME) {
        if let Some((owner, part)) = owner_of(&p.args) {
            let parts = &mut owned.entry(owner).or_default().parts;
            parts.entry(part).or_default().push((*id, p.args.clone()));
        }
    }
    let entry_of = |name: &str| env.lookup(name);
    // Each restored actor's type, for the reference check below.
    let mut types: HashMap<ActorId, TypeId> = HashMap::new();
    let mut expected: Vec<(ActorId, ActorId, &'static ActorEntry)> = Vec::new();
    let mut fail = |id: ActorId, p: &crate::portrait::Portrait, reason: String| {
        report.failures.push(UpgradeFailure {
            vat: vat.to_string(),
            id: Some(id.get()),
            type_name: p.name.clone(),
            version: p.version,
            reason,
        });
    };
    for (id, p) in graph.actors.iter().filter(|(_, p)| p.name != ENTRY_NAME) {
        report.checked += 1;
        let Some(entry) = entry_of(&p.name) else {
            fail(
                *id,
                p,
                format!(
                    "no actor is named `{}` in env {}: add its type to the env (or an alias \
                     with this name to the type that replaced it)",
                    p.name,
                    env.describe()
                ),
            );
            continue;
        };
        if p.version < entry.version {
            report.upgraded += 1;
        }
        let ctx = RestoreContext {
            vat: shared.clone(),
            directory: Some(directory.clone()),
            env: Some(env.clone()),
            expected: Vec::new(),
            entries: Some(owned.remove(id).unwrap_or_default()),
        };
        match restore(entry, &p.args, p.version, ctx) {
            Ok(refs) => {
                types.insert(*id, entry.type_id());
                expected.extend(refs.into_iter().map(|(to, expect)| (*id, to, expect)));
            }
            Err(reason) => fail(*id, p, reason),
        }
    }
    for (from, to, expect) in expected {
        let type_name = expect.type_name;
        let Some(p) = graph.actors.get(&from) else {
            continue;
        };
        match types.get(&to) {
            Some(actual) if *actual == expect.type_id() => {}
            Some(_) => fail(
                from,
                p,
                format!(
                    "it refers to actor {to} as a `{type_name}`, which that actor no longer is"
                ),
            ),
            None if graph.actors.contains_key(&to) => {}
            None => fail(
                from,
                p,
                format!("it refers to actor {to} of its vat, which the store does not hold"),
            ),
        }
    }
}

/// Restores one actor with `ctx` installed and drops it; gives the local references it
/// decoded (target, the entry of the type it expects).
fn restore(
    entry: &ActorEntry,
    args: &[u8],
    version: u32,
    ctx: RestoreContext,
) -> Result<Vec<(ActorId, &'static ActorEntry)>, String> {
    let (restored, ctx) = with_restore(ctx, || {
        catch_unwind(AssertUnwindSafe(|| entry.restore(version, args)))
    });
    match restored {
        Ok(Ok(actor)) => {
            drop(actor);
            // Those already checked as they were decoded (`None`) need no check here.
            let unchecked = ctx.expected.into_iter();
            Ok(unchecked.filter_map(|(to, e)| Some((to, e?))).collect())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            Err(format!(
                "restoring it (version {version} → {}) panicked: {what}",
                entry.version
            ))
        }
    }
}
