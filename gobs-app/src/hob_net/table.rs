//! The gateway's table of machines: per machine, the swiss numbers of its registration
//! and attach objects, where its registration is in its one life, and its attach
//! credential; the registrations spent, remembered to refuse them with their reason.
//! Kept in `<hob dir>/gateway.json`, replaced atomically and durably, so a table can be
//! changed whether the gateway's node runs or not (a teardown revokes without starting it).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::credential::Keeper;
use crate::actors::hob::HobError;

/// How many spent (used or revoked) registration sturdyrefs are remembered, to refuse them
/// with their reason rather than as unknown.
pub const SPENT_KEPT: usize = 4096;

/// The table's file in the gateway's directory.
pub(super) fn table_path(dir: &Path) -> PathBuf {
    dir.join("gateway.json")
}

/// Where a registration sturdyref is in its one life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RegState {
    Open,
    Used,
    Revoked,
}

/// One machine's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Entry {
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
pub(super) struct Spent {
    pub(super) registration: String,
    pub(super) machine: String,
    pub(super) state: RegState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Table {
    /// The port the node listens on (0 until the first start chose one).
    pub(super) port: u16,
    pub(super) machines: BTreeMap<String, Entry>,
    pub(super) spent: Vec<Spent>,
}

impl Table {
    /// Takes machine `machine` out of the table, its registration remembered as spent;
    /// answers its entry and how it was spent, `None` if the table does not know it.
    pub(super) fn revoke(&mut self, machine: &str) -> Option<(Entry, RegState)> {
        let entry = self.machines.remove(machine)?;
        let state = match entry.state {
            RegState::Open => RegState::Revoked,
            other => other,
        };
        self.spent.push(Spent {
            registration: entry.registration.clone(),
            machine: machine.to_string(),
            state,
        });
        let excess = self.spent.len().saturating_sub(SPENT_KEPT);
        self.spent.drain(..excess);
        Some((entry, state))
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

/// The table at `path`; an empty one if there is none yet.
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

/// Replaces `path` with `table` atomically and durably.
pub(super) fn write_table(path: &Path, table: &Table) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    let bytes =
        serde_json::to_vec_pretty(table).map_err(|e| format!("cannot encode the table: {e}"))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| io_err("write", path, e))
}

/// Revokes machine `machine`'s registration in the table in `dir` itself, for a gateway
/// whose node is not running (what it binds at its next start follows the table).
pub(super) fn revoke_in_file(dir: &Path, machine: &str) -> Result<(), String> {
    let path = table_path(dir);
    if !path.exists() {
        return Ok(());
    }
    let mut table = read_table(&path)?;
    if table.revoke(machine).is_some() {
        write_table(&path, &table)?;
    }
    Ok(())
}
