//! `gobs-app state convert --to log|sqlite`: move the state from one store kind to the
//! other, every portrait byte for byte (see [`gobs_runtime::store::copy_registry`]).
//!
//! The new store is written whole in one commit beside the old one; then the registry's
//! marker is switched to it and the old file is renamed `<file>.before-convert` (kept,
//! not deleted). A crash before the switch leaves the old store in use.

use std::path::{Path, PathBuf};

use gobs_runtime::StoreKind;
use gobs_runtime::store::{Copied, Store, StoreError, copy_registry};
use serde::Serialize;

use crate::backend::boss::store_kind;
use crate::config::Config;
use crate::error::AppError;

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Converted {
    /// What was copied.
    pub copied: Copied,
    /// The new store.
    pub store: PathBuf,
    /// Where the old store was kept.
    pub old_kept_in: PathBuf,
}

fn open(kind: &StoreKind, path: &Path) -> Result<Box<dyn Store>, AppError> {
    if let StoreKind::Memory = kind {
        return Err(AppError::State(
            "a state directory's store is never in memory (a bug)".to_string(),
        ));
    }
    kind.open_store(path)
        .map_err(|e: StoreError| AppError::State(format!("cannot convert: {e}")))
}

/// Copies the state's store (of the config's kind) into a new store of kind `to`, then
/// switches to it. Call it holding the state lock.
pub fn convert(state_dir: &Path, config: &Config, to: &StoreKind) -> Result<Converted, AppError> {
    let from_kind = store_kind(&config.store);
    let to_kind = to.with_durability(config.store.durability());
    let vats = super::vats_dir(state_dir);
    let (from_path, to_path) = (
        vats.join(from_kind.file_name()),
        vats.join(to_kind.file_name()),
    );
    let fail = |what: &str, e: StoreError| AppError::State(format!("cannot convert: {what}: {e}"));
    if from_path == to_path {
        return Err(AppError::State(format!(
            "the config's store kind is already {}: nothing to convert",
            to_kind.file_name()
        )));
    }
    if !from_path.exists() {
        return Err(AppError::State(format!(
            "there is no store to convert: {} does not exist (is the config's [store] kind \
             the one that wrote this state?)",
            from_path.display()
        )));
    }
    if to_path.exists() {
        return Err(AppError::State(format!(
            "{} exists already (left by an interrupted conversion?); move it away and retry",
            to_path.display()
        )));
    }
    let copied = {
        let mut from = open(&from_kind, &from_path)?;
        let mut into = open(&to_kind, &to_path)?;
        copy_registry(from.as_mut(), into.as_mut()).map_err(|e| fail("copying", e))?
    };
    let marker = vats.join(gobs_runtime::persist::MARKER);
    let kept = PathBuf::from(format!("{}.before-convert", from_path.display()));
    let switch = || -> std::io::Result<()> {
        let tmp = vats.join(".REGISTRY.tmp");
        std::fs::write(&tmp, format!("{}\n", to_kind.file_name()))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &marker)?;
        std::fs::rename(&from_path, &kept)?;
        std::fs::File::open(&vats)?.sync_all()
    };
    switch().map_err(|e| AppError::io("switch the store in", &vats, e))?;
    Ok(Converted {
        copied,
        store: to_path,
        old_kept_in: kept,
    })
}
