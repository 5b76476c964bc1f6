//! The gateway's table as rows, as earlier releases kept it: per machine, the swiss
//! numbers of its registration and attach objects, where its registration is in its one
//! life, and its attach credential; the registrations spent, remembered to refuse them
//! with their reason. The release before kept the rows in the boss's registry
//! ([`EarlierTable`]), the one before that in `<hob dir>/gateway.json`; both are read here
//! once, to make them the actors of [`super::table_store`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gobs_runtime::{JournalMap, define_actor};
use serde::{Deserialize, Serialize};

use super::credential::Keeper;
use crate::actors::hob::HobError;

/// How many spent (used or revoked) registration sturdyrefs are remembered, to refuse them
/// with their reason rather than as unknown.
pub const SPENT_KEPT: usize = 4096;

/// The table's file in the gateway's directory, in earlier releases.
pub(super) fn table_path(dir: &Path) -> PathBuf {
    dir.join("gateway.json")
}

/// Where a registration sturdyref is in its one life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegState {
    Open,
    Used,
    Revoked,
}

/// One machine's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The registration object's swiss number (base64url).
    pub(super) registration: String,
    /// The attach object's swiss number (base64url).
    pub(super) attach: String,
    pub(super) state: RegState,
    /// The machine's identity and attach credential, once it registered.
    #[serde(default)]
    pub(super) credential: Keeper,
}

/// A registration sturdyref that was used or revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spent {
    pub(super) registration: String,
    pub(super) machine: String,
    pub(super) state: RegState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// The port the node listens on (0 until the first start chose one).
    pub(super) port: u16,
    pub(super) machines: BTreeMap<String, Entry>,
    pub(super) spent: Vec<Spent>,
}

/// The table as the release before kept it in the boss's registry (vat
/// [`super::table_store::EARLIER_VAT`]): restored only to be read and moved into actors.
#[define_actor(name = "gobs_app::hob_net::table_store::GatewayTable")]
#[derive(Debug)]
pub struct EarlierTable {
    port: u16,
    machines: JournalMap<String, Entry>,
    spent: JournalMap<u64, Spent>,
    next_spent: u64,
}

#[define_actor]
impl EarlierTable {}

impl EarlierTable {
    /// One holding `table`'s rows, as the release before saved them.
    #[cfg(test)]
    pub(super) fn from_rows(table: Table) -> EarlierTable {
        let mut machines = JournalMap::new();
        for (machine, entry) in table.machines {
            machines.insert(machine, entry);
        }
        let mut spent = JournalMap::new();
        for (n, s) in (0u64..).zip(table.spent) {
            spent.insert(n, s);
        }
        EarlierTable {
            port: table.port,
            next_spent: spent.len() as u64,
            machines,
            spent,
        }
    }

    /// Its rows.
    pub(super) fn table(&self) -> Table {
        Table {
            port: self.port,
            machines: self.machines.to_btree_map(),
            spent: self.spent.values().cloned().collect(),
        }
    }
}

/// How a spent registration is refused, saying which way it was spent.
pub(super) fn refusal(machine: &str, state: RegState) -> String {
    let e = match state {
        RegState::Used | RegState::Open => HobError::AlreadyUsed {
            machine: machine.to_string(),
        },
        RegState::Revoked => HobError::Revoked {
            machine: machine.to_string(),
        },
    };
    format!("registration refused: {e}")
}

pub(super) fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

/// The table at `path` (an earlier release's); an empty one if there is none.
pub(super) fn read_table(path: &Path) -> Result<Table, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "the hob gateway's table {} is damaged ({e}); it was left as it is: restore \
                 it from a backup, or move it away (network machines must then be destroyed \
                 and created again)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::default()),
        Err(e) => Err(io_err("read", path, e)),
    }
}

/// How a refusal to a machine that was destroyed begins (the hob-client stops on it).
pub const DESTROYED: &str = "destroyed";

/// How the boss refuses a machine it no longer knows (the hob-client stops on it).
pub(super) fn destroyed(machine: &str) -> String {
    format!("{DESTROYED}: machine {machine:?} is no longer registered with this boss")
}
