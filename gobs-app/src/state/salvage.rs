//! `gobs-app state salvage`: keep what a damaged log store holds before the damage.

use std::path::PathBuf;

use gobs_runtime::store::{LogOptions, RegistryLogStore};
use serde::Serialize;

use crate::backend::boss::store_kind;
use crate::config::Config;
use crate::error::AppError;

/// What a salvage did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Salvaged {
    /// The store.
    pub store: PathBuf,
    /// Whole frames (commits, the first a snapshot) kept.
    pub frames_kept: u64,
    /// Where the cut was made (the store's length now).
    pub offset: u64,
    /// Bytes cut; 0 when the store was whole.
    pub bytes_cut: u64,
    /// The file holding the cut bytes, when something was cut.
    pub kept_in: Option<PathBuf>,
}

/// Opens the state's log store with salvage on (see [`LogOptions::salvage`]) and closes it:
/// a damaged log is cut back to its last whole frame before the damage, the cut bytes kept
/// beside it; a whole log is left as it is. Call it holding the state lock.
pub fn salvage(state_dir: &std::path::Path, config: &Config) -> Result<Salvaged, AppError> {
    let kind = store_kind(&config.store);
    let gobs_runtime::StoreKind::Log(options) = kind else {
        return Err(AppError::State(format!(
            "the store of {} is SQLite (config [store] kind); `state salvage` is for the log \
             store. A damaged SQLite database can be read with `sqlite3 FILE .recover`",
            state_dir.display()
        )));
    };
    let path = super::vats_dir(state_dir).join(kind.file_name());
    if !path.exists() {
        return Err(AppError::State(format!(
            "there is no store to salvage: {} does not exist",
            path.display()
        )));
    }
    let options = LogOptions {
        salvage: true,
        ..options
    };
    let store = RegistryLogStore::open(&path, options)
        .map_err(|e| AppError::State(format!("cannot salvage {}: {e}", path.display())))?;
    let stats = store.stats();
    Ok(Salvaged {
        store: path,
        frames_kept: stats.frames,
        offset: stats.file_bytes,
        bytes_cut: stats.cut_bytes,
        kept_in: store.cut_kept_in(),
    })
}
