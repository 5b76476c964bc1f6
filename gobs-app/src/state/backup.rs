//! `gobs-app state backup FILE` and `state restore-backup FILE`: a consistent copy of
//! the store taken while a daemon runs, and its restore into an empty state directory
//! (see [`gobs_runtime::store::backup_log`]).

use std::path::Path;

use gobs_runtime::store::{BackupInfo, backup_log, restore_log_backup};

use crate::backend::boss::store_kind;
use crate::config::Config;
use crate::error::AppError;

fn log_path(state_dir: &Path, config: &Config, what: &str) -> Result<std::path::PathBuf, AppError> {
    let kind = store_kind(&config.store);
    if !matches!(kind, gobs_runtime::StoreKind::Log(_)) {
        return Err(AppError::State(format!(
            "the store of {} is SQLite (config [store] kind); `state {what}` is for the log \
             store. Back a SQLite store up with `sqlite3 FILE .backup OTHER`",
            state_dir.display()
        )));
    }
    Ok(super::vats_dir(state_dir).join(kind.file_name()))
}

/// Writes a backup of the state's store to `to` (a new file). Needs no lock: it works
/// while a daemon serves the state.
pub fn backup(state_dir: &Path, config: &Config, to: &Path) -> Result<BackupInfo, AppError> {
    let log = log_path(state_dir, config, "backup")?;
    if !log.exists() {
        return Err(AppError::State(format!(
            "there is nothing to back up: {} does not exist",
            log.display()
        )));
    }
    backup_log(&log, to)
        .map_err(|e| AppError::State(format!("cannot back up {}: {e}", log.display())))
}

/// Restores the backup `from` as the store of `state_dir`, which must hold none. Call it
/// holding the state lock.
pub fn restore(state_dir: &Path, config: &Config, from: &Path) -> Result<BackupInfo, AppError> {
    let log = log_path(state_dir, config, "restore-backup")?;
    let vats = super::vats_dir(state_dir);
    for held in ["registry.log", "registry.sqlite"] {
        if vats.join(held).exists() {
            return Err(AppError::State(format!(
                "{} already holds a store ({held}); restore a backup into an empty state \
                 directory (--state-dir NEW), or move {} away first",
                state_dir.display(),
                vats.display()
            )));
        }
    }
    crate::config::state_dir::private_dir(&vats)
        .map_err(|e| AppError::io("create the store directory", &vats, e))?;
    let done = restore_log_backup(from, &log).map_err(|e| {
        AppError::State(format!("cannot restore the backup {}: {e}", from.display()))
    })?;
    crate::config::state_dir::mark_vats_made(state_dir, &vats)
        .map_err(|e| AppError::io("mark the store directory in", state_dir, e))?;
    Ok(done)
}
