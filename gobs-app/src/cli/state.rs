//! `gobs-app state …`: commands that work on the state directory's store itself, not
//! through the boss (the work is in [`crate::state`]). Each takes the state lock, so none
//! runs beside a daemon.

use std::io::{self, Write};
use std::path::Path;

use clap::Subcommand;
use serde::Serialize;

use crate::config::load_effective;
use crate::config::state_dir::StatePaths;
use crate::error::AppError;
use crate::state;

/// The `state` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum StateCommand {
    /// Cut a damaged log store back to its last whole frame before the damage, keeping the
    /// commits before it; the cut bytes are kept in a file beside the store
    /// (vats/registry.log.cut-OFFSET). Commits after the damage are dropped.
    Salvage,
}

impl StateCommand {
    fn name(&self) -> &'static str {
        match self {
            StateCommand::Salvage => "salvage",
        }
    }
}

/// Runs a `state` command; returns the exit code.
pub fn run(
    command: &StateCommand,
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, AppError> {
    let config = load_effective(explicit_config, &paths.default_config())?;
    let _lock = state::take(paths, command.name())?;
    match command {
        StateCommand::Salvage => {
            let done = state::salvage::salvage(&paths.dir, &config)?;
            print(&done, json, out, |done, out| match &done.kept_in {
                None => writeln!(
                    out,
                    "{} is whole ({} frames): nothing to salvage",
                    done.store.display(),
                    done.frames_kept
                ),
                Some(kept) => writeln!(
                    out,
                    "salvaged {}: kept the {} frames before byte {}; cut {} bytes, kept in {}",
                    done.store.display(),
                    done.frames_kept,
                    done.offset,
                    done.bytes_cut,
                    kept.display()
                ),
            })
        }
    }
}

/// Prints `value` as JSON, or for people with `text`.
fn print<T: Serialize>(
    value: &T,
    json: bool,
    out: &mut dyn Write,
    text: impl FnOnce(&T, &mut dyn Write) -> io::Result<()>,
) -> Result<u8, AppError> {
    let written = if json {
        serde_json::to_string_pretty(value)
            .map_err(io::Error::other)
            .and_then(|s| writeln!(out, "{s}"))
    } else {
        text(value, out)
    };
    written.map_err(AppError::Output)?;
    Ok(0)
}
