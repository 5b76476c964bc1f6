//! `gobs-app state rewind --to N`: take the state back to commit N, as `state history`
//! lists it, keeping the current store beside it. Without `--yes` it only says what would
//! be dropped.
//!
//! The log store reaches the commits since its last compaction; it keeps the whole log as
//! `registry.log.before-rewind-<time>`. A SQLite store reaches the commits its journal
//! keeps (the database's history window, [`gobs_runtime::store::SqliteStore::rewind`]); it
//! keeps a copy of the database as `registry.sqlite.before-rewind-<time>`.

use std::path::Path;

use gobs_runtime::StoreKind;
use gobs_runtime::inspect::Commit;
use gobs_runtime::store::{Rewound, SqliteStore, rewind_log};

use crate::backend::boss::store_kind;
use crate::config::Config;
use crate::error::AppError;

/// What a rewind to commit `to` drops: the later commits.
pub fn preview(state_dir: &Path, to: u64) -> Result<Vec<Commit>, AppError> {
    let image = super::inspect::image(state_dir)?;
    let history = image.history.unwrap_or_default();
    if !history.iter().any(|c| c.index == to) {
        let held = match (history.first(), history.last()) {
            (Some(first), Some(last)) => format!("commits {} to {}", first.index, last.index),
            _ => "no commit".to_string(),
        };
        return Err(AppError::State(format!(
            "the store reaches back to {held} (`gobs-app state history` lists them); there \
             is no commit {to}"
        )));
    }
    Ok(history.into_iter().filter(|c| c.index > to).collect())
}

/// Takes the state's store back to commit `to`, keeping the current store as
/// `<store file>.before-rewind-<unix seconds>`. Call it holding the state lock.
pub fn rewind(state_dir: &Path, config: &Config, to: u64) -> Result<Rewound, AppError> {
    let kind = store_kind(&config.store);
    let store = super::vats_dir(state_dir).join(kind.file_name());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let keep = store.with_file_name(format!("{}.before-rewind-{now}", kind.file_name()));
    let done = match kind {
        StoreKind::Sqlite(durability) => {
            if !store.exists() {
                return Err(AppError::State(format!(
                    "there is nothing to rewind: {} does not exist",
                    store.display()
                )));
            }
            SqliteStore::open(&store, durability).and_then(|mut db| db.rewind(to, &keep))
        }
        StoreKind::Log(_) => rewind_log(&store, to, &keep),
        StoreKind::Memory => {
            return Err(AppError::State(
                "the state's store is in memory: there is nothing to rewind".to_string(),
            ));
        }
    };
    done.map_err(|e| AppError::State(format!("cannot rewind {}: {e}", store.display())))
}
