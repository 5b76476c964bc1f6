//! Restoring a persistent vat: every saved actor rebuilt from the store's graph, map
//! entries handed to their owners, references checked against the types that expect them,
//! and the reachability bookkeeping rebuilt (with what the store holds, so that writing
//! an unchanged portrait again is skipped).

use std::ops::Range;
use std::sync::Arc;

use crate::entry::ActorEntry;
use crate::error::Error;
use crate::persist::churn::{MAX_PLAUSIBLE_ID, Persistence, saved_roots};
use crate::persist::context::{
    Directory, EntrySource, RestoreContext, current_restore, with_restore,
};
use crate::persist::entries::{self, ENTRY_NAME};
use crate::persist::reach::{IdMap, Reach};
use crate::persist::roots::SavedRoot;
use crate::persist::stored::{self, Stored, StoredImage};
use crate::portrait::ActorId;
use crate::store::VatImage;
use crate::vat::VatCore;

/// A sleepy vat's restore lets go of the holds its decoded actors made this often (in
/// actors restored).
const PRUNE_EVERY: usize = 1024;

impl Persistence {
    /// Rebuilds every saved actor (or, in a sleepy vat, places it asleep). Returns the roots (with types) and unreachable ids.
    #[allow(clippy::type_complexity)]
    pub(super) fn restore(
        &mut self,
        core: &VatCore,
        graph: VatImage,
    ) -> Result<(Vec<SavedRoot>, Vec<ActorId>), Error> {
        let directory: Option<Directory> = Some(self.home.clone() as Directory);
        let failed = |detail: String, source: Option<Error>| Error::Restore {
            vat: core.shared.name.clone(),
            store: self.store_name.clone(),
            detail,
            source: source.map(Arc::new),
        };
        // Only actors that refer to others have edges (most are leaves).
        let mut edges: IdMap<Vec<ActorId>> = IdMap::default();
        // Portraits of one type come in runs: look the entry up once per run (by the
        // type's index in the image: no name compared per actor).
        let mut last: Option<(u32, &'static ActorEntry)> = None;
        let is_entry: Vec<bool> = graph.types().iter().map(|(n, _)| n == ENTRY_NAME).collect();
        let entry_type = |ty: u32| is_entry.get(ty as usize).copied().unwrap_or(false);
        let mut max_id = 0;
        let corrupt = |detail: String| Error::Store {
            vat: core.shared.name.clone(),
            source: Arc::new(crate::store::StoreError::Corrupt {
                path: self.store_name.clone().into(),
                offset: 0,
                detail,
            }),
        };
        if graph.next_id() > MAX_PLAUSIBLE_ID {
            return Err(corrupt(format!(
                "it says the vat's next actor id is {}, more actors than a vat can have \
                 spawned (at most {MAX_PLAUSIBLE_ID})",
                graph.next_id()
            )));
        }
        // Map entries saved as portraits of their own go to their owners (by field).
        // (Only their arguments are copied: the other actors are read where they lie.)
        let mut owned: IdMap<EntrySource> = IdMap::default();
        for (portrait, ty, _) in graph.placed() {
            let id = portrait.id;
            if id.get() >= MAX_PLAUSIBLE_ID {
                return Err(corrupt(format!(
                    "it holds actor id {id}, more than a vat can have spawned (ids are handed \
                     out one per spawn, from 0; at most {MAX_PLAUSIBLE_ID})"
                )));
            }
            max_id = max_id.max(id.get() + 1);
            if !entry_type(ty) {
                continue;
            }
            let (owner, part) = entries::owner_of(portrait.args).ok_or_else(|| {
                failed(
                    format!(
                        "map entry {id} is damaged (its arguments are not [owner, field, key, \
                         value]); restore the store from a backup"
                    ),
                    None,
                )
            })?;
            owned
                .entry(owner)
                .or_default()
                .parts
                .entry(part)
                .or_default()
                .push((id, portrait.args.to_vec()));
        }
        let mut entries_of: IdMap<Vec<ActorId>> = IdMap::default();
        core.reserve_restored(graph.len());
        // One context for every actor: the references they hold go to one list, each
        // actor's span of it noted as it is restored.
        let ctx = RestoreContext {
            vat: core.shared.clone(),
            directory,
            env: Some(self.env.clone()),
            expected: Vec::with_capacity(graph.len()),
            entries: None,
        };
        // Who holds each span of `expected` (actors without references have none).
        let mut spans: Vec<(ActorId, Range<usize>)> = Vec::new();
        let actors = graph.placed().filter(|(_, ty, _)| !entry_type(*ty));
        // Actors placed asleep so far (a sleepy vat lets go of their holds now and then).
        let mut placed_asleep: usize = 0;
        let (placed, ctx) = with_restore(ctx, || -> Result<(), Error> {
            for (portrait, ty, _) in actors {
                let id = portrait.id;
                let entry = match last {
                    Some((t, e)) if t == ty => e,
                    _ => {
                        let e =
                            self.lookup(portrait.name, portrait.version, id, &core.shared.name)?;
                        last = Some((ty, e));
                        e
                    }
                };
                // Most vats own no map entries: no lookup per actor then.
                let source = if owned.is_empty() {
                    None
                } else {
                    owned.remove(&id)
                };
                let has_entries = source.is_some();
                // One empty source serves every actor that owns no entries (only its count
                // of map fields restarts): no source made and dropped per actor.
                let start = current_restore(|ctx| {
                    let entries = ctx.entries.get_or_insert_default();
                    match source {
                        Some(source) => *entries = source,
                        None => entries.next_part = 0,
                    }
                    ctx.expected.len()
                });
                let restored = entry.restore(portrait.version, portrait.args);
                // Taken only if the actor restored entries or left some unclaimed.
                let (end, source) = current_restore(|ctx| {
                    let source = ctx
                        .entries
                        .as_mut()
                        .filter(|e| !e.parts.is_empty() || !e.restored.is_empty())
                        .map(std::mem::take);
                    (ctx.expected.len(), source)
                });
                let restored = restored.map_err(|e| {
                    let hint = if has_entries && portrait.version < entry.version {
                        " (this actor's map is saved as entry portraits, which upgrade steps \
                         cannot rewrite: keep the map field's key and value types across versions)"
                    } else {
                        ""
                    };
                    failed(format!("actor {id}: {e}{hint}"), Some(e))
                })?;
                // Decoded only to learn its references, a sleepy vat's actor sleeps until
                // its first message.
                if core.is_sleepy()
                    && !has_entries
                    && core.place_asleep(id, entry, portrait.version, portrait.args)
                {
                    drop(restored);
                    placed_asleep += 1;
                    if placed_asleep.is_multiple_of(PRUNE_EVERY) {
                        core.prune_restore_holds();
                    }
                } else {
                    core.insert_restored(id, restored);
                }
                for (part, left) in source.iter().flat_map(|s| &s.parts) {
                    tracing::warn!(
                        vat = %core.shared.name,
                        actor = %id,
                        "{} saved map entries of field {part} belong to no map of the restored \
                         actor; they are removed",
                        left.len()
                    );
                }
                let owned_entries = source.as_ref().map_or(&[][..], |s| &s.restored[..]);
                if start == end && owned_entries.is_empty() {
                    continue;
                }
                spans.push((id, start..end));
                let targets = |span: Range<usize>| {
                    current_restore(|ctx| ctx.expected[span].iter().map(|(t, _)| *t).collect())
                };
                if owned_entries.is_empty() {
                    edges.insert(id, targets(start..end));
                    continue;
                }
                // The references an entry holds are its own edges, not its owner's.
                let mut mine = vec![true; end - start];
                for (entry_id, span) in owned_entries {
                    let entry_targets: Vec<ActorId> = targets(span.clone());
                    mine[span.start - start..span.end - start]
                        .iter_mut()
                        .for_each(|m| *m = false);
                    if !entry_targets.is_empty() {
                        edges.insert(*entry_id, entry_targets);
                    }
                }
                let own: Vec<ActorId> = current_restore(|ctx| {
                    ctx.expected[start..end]
                        .iter()
                        .zip(&mine)
                        .filter(|(_, m)| **m)
                        .map(|((t, _), _)| *t)
                        .collect()
                });
                if !own.is_empty() {
                    edges.insert(id, own);
                }
                entries_of.insert(id, owned_entries.iter().map(|(e, _)| *e).collect());
            }
            Ok(())
        });
        placed?;
        if core.is_sleepy() {
            core.prune_restore_holds();
        }
        for (from, span) in spans {
            for (target, expect) in &ctx.expected[span] {
                // Checked as it was decoded.
                let Some(expect) = expect else { continue };
                let (target, type_name) = (*target, expect.type_name);
                match core.type_of(target) {
                    Some(t) if t == expect.type_id() => {}
                    Some(_) => {
                        return Err(failed(
                            format!(
                                "actor {from} refers to actor {target} as a {type_name}, but it \
                                 was saved as another type; the store does not match this program"
                            ),
                            None,
                        ));
                    }
                    None => {
                        return Err(failed(
                            format!(
                                "actor {from} refers to actor {target}, which the store does not \
                                 hold; the store is damaged — restore it from a backup"
                            ),
                            None,
                        ));
                    }
                }
            }
        }
        core.set_next_id(graph.next_id().max(max_id));
        let roots = saved_roots(core, graph.roots());
        for (owner, source) in &owned {
            let n: usize = source.parts.values().map(Vec::len).sum();
            tracing::warn!(
                vat = %core.shared.name,
                "{n} saved map entries belong to actor {owner}, which the store does not hold; \
                 they are removed"
            );
        }
        // What the store holds, so that writing it again unchanged is skipped: where each
        // portrait lies in the image (compared if it is ever written again), or, for
        // arguments elsewhere, their fingerprint. Portraits of one type come in runs: its
        // type is hashed once per run, and only if one of them needs it.
        let mut type_print: Option<(u32, stored::TypePrint)> = None;
        let all = graph.placed().map(|(portrait, ty, at)| {
            let stored = at.and_then(|at| Stored::read(ty, at)).unwrap_or_else(|| {
                let print = match &type_print {
                    Some((t, print)) if *t == ty => print,
                    _ => {
                        let name = stored::name_print(portrait.name);
                        let print = stored::TypePrint::new(name, portrait.version);
                        &type_print.insert((ty, print)).1
                    }
                };
                Stored::typed(print, portrait.args)
            });
            (portrait.id, stored)
        });
        let image = StoredImage {
            bytes: graph.bytes().clone(),
            types: graph.types().to_vec(),
        };
        let (reach, garbage) = Reach::restored(
            graph.roots().to_vec(),
            all,
            max_id,
            edges,
            entries_of,
            Some(image),
        );
        self.reach = reach;
        Ok((roots, garbage))
    }

    /// The env's entry for a portrait saved as `name` (version `version`), or an error
    /// that says how to fix the env.
    fn lookup(
        &self,
        name: &str,
        version: u32,
        id: ActorId,
        vat: &str,
    ) -> Result<&'static ActorEntry, Error> {
        self.env.lookup(name).ok_or_else(|| Error::Restore {
            vat: vat.to_string(),
            store: self.store_name.clone(),
            detail: format!(
                "actor {id} was saved as `{}` (version {}), which env {} does not list. Add \
                 that actor to the env; if its code moved, keep the old name with \
                 #[define_actor(aliases = [\"{}\"])]",
                name,
                version,
                self.env.describe(),
                name
            ),
            source: None,
        })
    }
}
