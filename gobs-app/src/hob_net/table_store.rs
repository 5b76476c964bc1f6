//! The gateway's table kept in the boss's persistence registry (a vat of its own,
//! [`TABLE_VAT`]): per machine its [`Registration`] actor (which holds its [`Attach`]
//! actor), and the registrations spent, kept to refuse them with their reason. Each
//! registration, revocation and credential rotation is a turn of these actors, so it
//! commits atomically with the rest of the boss, and an answer to a machine leaves only
//! once what it answers is durable (the registry's output gate).
//!
//! Earlier releases kept rows instead: in the registry (vat [`EARLIER_VAT`], an
//! [`EarlierTable`]), or before that in `<hob dir>/gateway.json`. Either is read once, when
//! the table's vat is first made, and made into actors by [`Registrations::migrate`]; then
//! the earlier vat is destroyed, or the file renamed `gateway.json.migrated`.

use std::path::{Path, PathBuf};

use gobs_runtime::{JournalMap, Ref, Registry, define_actor, spawn};

use super::credential::Keeper;
use super::hob_actors::{Attach, Registration};
use super::table::{EarlierTable, Entry, RegState, SPENT_KEPT, Table, read_table, table_path};

/// The name of the table's vat in the boss's registry.
pub const TABLE_VAT: &str = "hob-registrations";

/// The name of the vat that held an earlier release's rows.
pub const EARLIER_VAT: &str = "hob-gateway";

/// The gateway's table (see the module docs): one entry per machine and per spent
/// registration, so a change writes what it changed.
#[define_actor]
#[derive(Debug)]
pub struct Registrations {
    /// The port the gateway listens on (0 until its first start chose one).
    port: u16,
    machines: JournalMap<String, Ref<Registration>>,
    /// Spent registrations by age (oldest first), at most [`SPENT_KEPT`].
    spent: JournalMap<u64, Ref<Registration>>,
    next_spent: u64,
    /// An earlier release's rows, until [`Registrations::migrate`] makes them actors (a
    /// vat's first turn could, but not a turn that would roll back with the first open).
    #[actor(default = None)]
    earlier: Option<Table>,
}

#[define_actor]
impl Registrations {}

/// One machine's objects, as the gateway binds them on its node.
#[derive(Debug, Clone)]
pub(super) struct Bound {
    pub(super) machine: String,
    pub(super) registration: Ref<Registration>,
    /// The registration's swiss number (base64url).
    pub(super) registration_swiss: String,
    pub(super) state: RegState,
    /// Its attach actor and swiss number, while the machine is not revoked.
    pub(super) attach: Option<(Ref<Attach>, String)>,
}

impl Registrations {
    fn seeded(earlier: Option<Table>) -> Registrations {
        let port = earlier.as_ref().map_or(0, |t| t.port);
        let mut table = Registrations::new(port, JournalMap::new(), JournalMap::new(), 0);
        table.earlier = earlier;
        table
    }

    /// Makes an earlier release's rows into actors (nothing to do if there are none).
    pub(super) fn migrate(&mut self) {
        let Some(earlier) = self.earlier.take() else {
            return;
        };
        for (machine, entry) in earlier.machines {
            let registration = Registration::spawn_from(&machine, entry);
            self.machines.insert(machine, registration);
        }
        for spent in earlier.spent {
            self.remember(spawn(Registration::spent(spent)));
        }
    }

    /// What the gateway binds: each machine's objects, then each spent registration's.
    pub(super) fn bound(&self) -> Result<Vec<Bound>, gobs_runtime::Error> {
        self.machines
            .values()
            .chain(self.spent.values())
            .map(bound)
            .collect()
    }

    /// All of it as rows (as earlier releases kept it).
    #[cfg(test)]
    pub(super) fn table(&self) -> Result<Table, gobs_runtime::Error> {
        let mut machines = std::collections::BTreeMap::new();
        for (machine, registration) in self.machines.iter() {
            machines.insert(machine.clone(), entry(registration)?);
        }
        let mut spent = Vec::new();
        for registration in self.spent.values() {
            let b = bound(registration)?;
            spent.push(super::table::Spent {
                registration: b.registration_swiss,
                machine: b.machine,
                state: b.state,
            });
        }
        Ok(Table {
            port: self.port,
            machines,
            spent,
        })
    }

    pub(super) fn port(&self) -> u16 {
        self.port
    }

    pub(super) fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    /// A new registration for machine `machine` under the swiss numbers given, its earlier
    /// one revoked; answers the new objects, and the earlier registration as it is now.
    pub(super) fn issue(
        &mut self,
        machine: &str,
        registration_swiss: String,
        attach_swiss: String,
    ) -> Result<(Bound, Option<Bound>), gobs_runtime::Error> {
        let revoked = self.revoke(machine)?;
        let entry = Entry {
            registration: registration_swiss,
            attach: attach_swiss,
            state: RegState::Open,
            credential: Keeper::default(),
        };
        let registration = Registration::spawn_from(machine, entry);
        self.machines
            .insert(machine.to_string(), registration.clone());
        Ok((bound(&registration)?, revoked))
    }

    /// Revokes machine `machine`'s registration and keeps it among the spent; answers it
    /// as it is now, `None` if the table does not know the machine.
    pub(super) fn revoke(&mut self, machine: &str) -> Result<Option<Bound>, gobs_runtime::Error> {
        let Some(registration) = self.machines.remove(machine) else {
            return Ok(None);
        };
        registration.call_mut_with(Registration::revoke)??;
        let revoked = bound(&registration)?;
        self.remember(registration);
        Ok(Some(revoked))
    }

    fn remember(&mut self, spent: Ref<Registration>) {
        self.spent.insert(self.next_spent, spent);
        self.next_spent += 1;
        while self.spent.len() > SPENT_KEPT {
            let Some(oldest) = self.spent.keys().next().copied() else {
                break;
            };
            self.spent.remove(&oldest);
        }
    }
}

/// How the gateway binds `registration` (and its attach object).
fn bound(registration: &Ref<Registration>) -> Result<Bound, gobs_runtime::Error> {
    let (machine, registration_swiss, state, attach) =
        registration.call_with(Registration::parts)?;
    let attach = match attach {
        Some(a) => {
            let swiss = a.call_with(|a| a.swiss().to_string())?;
            Some((a, swiss))
        }
        None => None,
    };
    Ok(Bound {
        machine,
        registration: registration.clone(),
        registration_swiss,
        state,
        attach,
    })
}

/// `registration`'s row, as earlier releases kept it.
#[cfg(test)]
fn entry(registration: &Ref<Registration>) -> Result<Entry, gobs_runtime::Error> {
    let b = bound(registration)?;
    let (attach, credential) = match &b.attach {
        Some((a, swiss)) => (swiss.clone(), a.call_with(|a| a.keeper().clone())?),
        None => (String::new(), Keeper::default()),
    };
    Ok(Entry {
        registration: b.registration_swiss,
        attach,
        state: b.state,
        credential,
    })
}

/// The table in `registry`, made on first open from what an earlier release left, if it
/// left anything (see the module docs): its vat is destroyed, or its file renamed aside,
/// once the registry committed the actors — unless `read_only`: then the registry's writes
/// are not kept, and what the earlier release left stays for the next open. Blocking: off
/// the vats.
pub(super) fn open_table(
    registry: &Registry,
    dir: &Path,
    read_only: bool,
) -> Result<Ref<Registrations>, String> {
    let vats = registry.vat_names();
    let existed = vats.iter().any(|n| n == TABLE_VAT);
    let earlier_vat = vats.iter().any(|n| n == EARLIER_VAT);
    let legacy = table_path(dir);
    let seed = match (existed, earlier_vat) {
        (true, _) => None,
        (false, true) => Some(read_earlier_vat(registry)?),
        (false, false) if legacy.exists() => Some(read_table(&legacy)?),
        (false, false) => None,
    };
    let (_, table) = registry
        .start_vat(TABLE_VAT, move || spawn(Registrations::seeded(seed)))
        .map_err(|e| format!("cannot open the hob gateway's table in the registry: {e}"))?;
    // Once this answers, the turn that made the actors (and the table) has committed.
    table
        .send_mut_with(|t| t.migrate())
        .wait()
        .map_err(|e| format!("cannot move the hob gateway's table into actors: {e}"))?;
    if read_only {
        return Ok(table);
    }
    // What an earlier release left, moved in now (or by an open that ended before it
    // could clear it away).
    if earlier_vat {
        registry.destroy_vat(EARLIER_VAT).wait().map_err(|e| {
            format!(
                "the hob gateway's table moved into actors, but vat {EARLIER_VAT:?} that \
                held its rows cannot be removed ({e}); it is tried again at the next open"
            )
        })?;
        tracing::info!(
            vat = EARLIER_VAT,
            "hob gateway table's rows moved into actors"
        );
    } else if legacy.exists() {
        let to = PathBuf::from(format!("{}.migrated", legacy.display()));
        std::fs::rename(&legacy, &to).map_err(|e| {
            format!(
                "the hob gateway's table moved into the registry, but {} cannot be renamed \
                 ({e}); move it away by hand",
                legacy.display()
            )
        })?;
        tracing::info!(from = %legacy.display(), to = %to.display(), "hob gateway table migrated into the registry");
    }
    Ok(table)
}

/// The rows of the earlier release's table vat.
fn read_earlier_vat(registry: &Registry) -> Result<Table, String> {
    let cannot = |e: &dyn std::fmt::Display| {
        format!(
            "cannot read the hob gateway's table of an earlier release (vat {EARLIER_VAT:?}): {e}"
        )
    };
    let (_, earlier): (_, Ref<EarlierTable>) =
        registry.restore_vat(EARLIER_VAT).map_err(|e| cannot(&e))?;
    earlier
        .send_with(EarlierTable::table)
        .wait()
        .map_err(|e| cannot(&e))
}

#[cfg(test)]
#[path = "table_store_tests.rs"]
mod tests;
