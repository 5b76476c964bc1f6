//! The gateway's table kept in the boss's persistence registry (a vat of its own,
//! [`TABLE_VAT`]), so a registration, a revocation and each credential rotation commit
//! atomically with the rest of the boss, and an answer to a machine leaves only once what
//! it answers is durable (the registry's output gate). Earlier releases kept the table in
//! `<hob dir>/gateway.json`: it is read once, when the vat is first made, and renamed
//! `gateway.json.migrated` once the registry holds it.

use std::path::{Path, PathBuf};

use gobs_runtime::{JournalMap, Ref, Registry, define_actor, spawn};

use super::table::{Entry, RegState, SPENT_KEPT, Spent, Table, read_table, table_path};

/// The name of the table's vat in the boss's registry.
pub const TABLE_VAT: &str = "hob-gateway";

/// The gateway's table (see the module docs): one portrait per machine, and per spent
/// registration, so a change writes what it changed.
#[define_actor]
#[derive(Debug)]
pub struct GatewayTable {
    /// The port the gateway listens on (0 until its first start chose one).
    port: u16,
    machines: JournalMap<String, Entry>,
    /// Spent registrations by age (oldest first), at most [`SPENT_KEPT`].
    spent: JournalMap<u64, Spent>,
    next_spent: u64,
}

#[define_actor]
impl GatewayTable {}

impl GatewayTable {
    fn from_table(table: Table) -> GatewayTable {
        let mut t = GatewayTable {
            port: table.port,
            machines: JournalMap::new(),
            spent: JournalMap::new(),
            next_spent: 0,
        };
        for (machine, entry) in table.machines {
            t.machines.insert(machine, entry);
        }
        for spent in table.spent {
            t.remember(spent);
        }
        t
    }

    /// All of it, as the gateway reads it when it starts.
    pub(super) fn table(&self) -> Table {
        Table {
            port: self.port,
            machines: self.machines.to_btree_map(),
            spent: self.spent.values().cloned().collect(),
        }
    }

    pub(super) fn port(&self) -> u16 {
        self.port
    }

    pub(super) fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    pub(super) fn entry_mut(&mut self, machine: &str) -> Option<&mut Entry> {
        self.machines.get_mut(machine)
    }

    /// Machine `machine`'s new entry, its earlier one revoked (answered, with how it was
    /// spent).
    pub(super) fn issue(&mut self, machine: &str, entry: Entry) -> Option<(Entry, RegState)> {
        let revoked = self.revoke(machine);
        self.machines.insert(machine.to_string(), entry);
        revoked
    }

    /// Takes machine `machine` out, its registration remembered as spent; answers its
    /// entry and how it was spent, `None` if the table does not know it.
    pub(super) fn revoke(&mut self, machine: &str) -> Option<(Entry, RegState)> {
        let entry = self.machines.remove(machine)?;
        let state = match entry.state {
            RegState::Open => RegState::Revoked,
            other => other,
        };
        self.remember(Spent {
            registration: entry.registration.clone(),
            machine: machine.to_string(),
            state,
        });
        Some((entry, state))
    }

    fn remember(&mut self, spent: Spent) {
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

/// The table in `registry`, made on first open: from `<dir>/gateway.json` if an earlier
/// release left one (renamed aside once the registry committed it, unless `read_only`:
/// then the registry's writes are not kept, and the file stays for the next open).
/// Blocking: off the vats.
pub(super) fn open_table(
    registry: &Registry,
    dir: &Path,
    read_only: bool,
) -> Result<Ref<GatewayTable>, String> {
    let existed = registry.vat_names().iter().any(|n| n == TABLE_VAT);
    let legacy = table_path(dir);
    let seed = if !existed && legacy.exists() {
        Some(read_table(&legacy)?)
    } else {
        None
    };
    // A table moved in by an open that ended before it could rename the file.
    let moved_in = existed && legacy.exists();
    let migrating = seed.is_some() || moved_in;
    let (_, table) = registry
        .start_vat(TABLE_VAT, move || {
            spawn(GatewayTable::from_table(seed.unwrap_or_default()))
        })
        .map_err(|e| format!("cannot open the hob gateway's table in the registry: {e}"))?;
    if migrating && !read_only {
        // Once this answers, the turn that made the table has committed.
        table
            .send_with(|t| t.port())
            .wait()
            .map_err(|e| format!("cannot read the hob gateway's table: {e}"))?;
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
