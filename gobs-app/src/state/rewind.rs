//! `gobs-app state rewind --to N`: take the state back to commit N of its log (the
//! commits since the log's last compaction; `state history` lists them), keeping the
//! current log beside it. Without `--yes` it only says what would be dropped.

use std::path::Path;

use gobs_runtime::inspect::Commit;
use gobs_runtime::store::{Rewound, rewind_log};

use crate::backend::boss::store_kind;
use crate::config::Config;
use crate::error::AppError;

/// What a rewind to commit `to` drops: the later commits.
pub fn preview(state_dir: &Path, to: u64) -> Result<Vec<Commit>, AppError> {
    let image = super::inspect::image(state_dir)?;
    let history = image.history.unwrap_or_default();
    if to as usize >= history.len() {
        return Err(AppError::State(format!(
            "the log holds commits 0 to {} (since its last compaction; `gobs-app state \
             history` lists them); there is no commit {to}",
            history.len().saturating_sub(1)
        )));
    }
    Ok(history.into_iter().filter(|c| c.index > to).collect())
}

/// Cuts the state's log after commit `to`, keeping the current log as
/// `registry.log.before-rewind-<unix seconds>`. Call it holding the state lock.
pub fn rewind(state_dir: &Path, config: &Config, to: u64) -> Result<Rewound, AppError> {
    let kind = store_kind(&config.store);
    if !matches!(kind, gobs_runtime::StoreKind::Log(_)) {
        return Err(AppError::State(
            "`state rewind` is for the log store; a SQLite store keeps no history (restore a \
             backup instead)"
                .to_string(),
        ));
    }
    let log = super::vats_dir(state_dir).join(kind.file_name());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let keep = log.with_file_name(format!("{}.before-rewind-{now}", kind.file_name()));
    rewind_log(&log, to, &keep)
        .map_err(|e| AppError::State(format!("cannot rewind {}: {e}", log.display())))
}
