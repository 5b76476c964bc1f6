//! Operating the state directory's store, apart from the boss: the work behind
//! `gobs-app state …` (the command line's side is [`crate::cli::state`]). A command that
//! writes takes the state lock, so it never runs beside a daemon or another command.
//!
//! - [`salvage`]: cut a damaged log store back to its last whole frame before the damage,
//!   keeping what is cut in a quarantine file beside it.
//! - [`inspect`]: what the store holds (these read without the lock, beside a daemon).
//! - [`backup`]: a consistent copy taken beside a daemon, restored into an empty state.
//! - [`convert`]: move the state between the log and SQLite stores.
//! - [`rewind`]: take the state back to an earlier commit of its log.

pub mod backup;
pub mod convert;
pub mod inspect;
pub mod rewind;
pub mod salvage;

use std::path::{Path, PathBuf};

use crate::actors::vats::VATS_DIR;
use crate::config::state_dir::StatePaths;
use crate::daemon::find::{Target, connect};
use crate::daemon::lock::StateLock;
use crate::error::AppError;

/// Takes the state for a state command: refused while a daemon serves it.
pub fn take(paths: &StatePaths, command: &str) -> Result<StateLock, AppError> {
    match connect(paths)? {
        Target::Embedded(lock) => Ok(lock),
        Target::Daemon(_) => Err(AppError::State(format!(
            "a gobs-app daemon serves {}; `gobs-app state {command}` works on the store \
             itself, so stop the daemon first (Ctrl-C in its terminal, or kill it), then retry",
            paths.dir.display()
        ))),
    }
}

/// The store directory of a state directory.
pub fn vats_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(VATS_DIR)
}

/// What to add to an error that stops the actors' state from opening: for a damaged log
/// store, the command that salvages it.
pub fn damage_hint(state_dir: &Path, error: &gobs_runtime::Error) -> String {
    let gobs_runtime::Error::Store { source, .. } = error else {
        return String::new();
    };
    match source.as_ref() {
        gobs_runtime::store::StoreError::Corrupt { path, .. }
            if path.extension().is_some_and(|e| e == "log") =>
        {
            format!(
                ". To keep the commits before the damage, stop any daemon and run \
                 `gobs-app --state-dir {} state salvage`: it cuts the log there and keeps the \
                 cut bytes in a file beside it (copy {} somewhere first if you want the \
                 file exactly as it is now)",
                state_dir.display(),
                path.display()
            )
        }
        _ => String::new(),
    }
}
