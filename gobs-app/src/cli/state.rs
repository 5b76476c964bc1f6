//! `gobs-app state …`: commands that work on the state directory's store itself, not
//! through the boss (the work is in [`crate::state`]). `salvage` takes the state lock, so
//! it never runs beside a daemon; the others only read the store's file, daemon or not.

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

    /// List the vats the store holds, with their actors' count and size
    Vats,

    /// List the stored actors: vat, id, type, version, size of the saved arguments
    Actors {
        /// Only this vat's
        #[arg(long, value_name = "VAT")]
        vat: Option<String>,
    },

    /// Show one actor's portrait (type, version, arguments) as JSON
    Portrait {
        /// The actor's vat (`state vats` lists them)
        vat: String,
        /// The actor's id in its vat (`state actors` lists them)
        id: u64,
    },

    /// Print the references between stored actors as a Graphviz dot graph
    Graph,

    /// List the stored actors that no vat's root reaches (a sign of damage or of a bug)
    Unreachable,

    /// List the commits `rewind` can go back to: number, time, bytes, vats written (a log
    /// store's since its last compaction, which folds earlier commits into one snapshot; a
    /// SQLite store's within its journal's window)
    History,

    /// Write a consistent copy of the store to FILE (a new file), while the daemon runs
    /// or not; restore it with `restore-backup`
    Backup {
        /// Where to write it
        file: std::path::PathBuf,
    },

    /// Restore a backup as the store of an empty state directory (its machines, node
    /// identity and sturdyrefs with it); stop any daemon on that directory first
    RestoreBackup {
        /// The backup
        file: std::path::PathBuf,
    },

    /// Move the state to the other store kind (log or sqlite), every portrait byte for
    /// byte; the old store file is kept as FILE.before-convert. Then set the config's
    /// `[store]` kind to the new kind. Stop any daemon first
    Convert {
        /// The store kind to move to: log or sqlite
        #[arg(long, value_name = "KIND", value_parser = parse_store_kind)]
        to: crate::config::StoreKind,
    },

    /// Take the state back to commit N (`state history` lists the commits it can go back
    /// to); the current store is kept beside it. Without --yes, only shows what would be
    /// dropped. Stop any daemon first
    Rewind {
        /// The commit to go back to
        #[arg(long, value_name = "N")]
        to: u64,
        /// Do it (without this, nothing changes)
        #[arg(long)]
        yes: bool,
    },

    /// Check that every stored actor restores under this build (its upgrade steps
    /// included) before running it on the state; writes nothing. Exits 1 when one fails
    CheckUpgrade,
}

/// Runs a `state` command; returns the exit code.
pub fn run(
    command: &StateCommand,
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, AppError> {
    use crate::state::inspect;
    match command {
        StateCommand::Salvage => {
            let config = load_effective(explicit_config, &paths.default_config())?;
            let _lock = state::take(paths, "salvage")?;
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
        StateCommand::Vats => {
            let vats = inspect::vats(&inspect::image(&paths.dir)?);
            print(&vats, json, out, |vats, out| {
                for v in vats {
                    let damage = v
                        .damage
                        .as_deref()
                        .map_or(String::new(), |d| format!(" ({d})"));
                    writeln!(
                        out,
                        "{:<32} {:<8} {:>7} actors {:>10} bytes{damage}",
                        v.name, v.status, v.actors, v.bytes
                    )?;
                }
                Ok(())
            })
        }
        StateCommand::Actors { vat } => {
            let mut actors = inspect::image(&paths.dir)?.actors();
            if let Some(vat) = vat {
                actors.retain(|a| &a.vat == vat);
            }
            print(&actors, json, out, |actors, out| {
                for a in actors {
                    let root = if a.root { " (root)" } else { "" };
                    writeln!(
                        out,
                        "{:<32} {:>6}  {} v{}  {} bytes{root}",
                        a.vat, a.id, a.type_name, a.version, a.bytes
                    )?;
                }
                Ok(())
            })
        }
        StateCommand::Portrait { vat, id } => {
            let portrait = inspect::portrait(&inspect::image(&paths.dir)?, vat, *id)?;
            // JSON either way: the arguments are data.
            print(&portrait, true, out, |_, _| Ok(()))
        }
        StateCommand::Graph => {
            let dot = inspect::image(&paths.dir)?.dot();
            print(&dot, json, out, |dot, out| out.write_all(dot.as_bytes()))
        }
        StateCommand::Unreachable => {
            let lost = inspect::image(&paths.dir)?.unreachable();
            print(&lost, json, out, |lost, out| {
                if lost.is_empty() {
                    return writeln!(out, "every stored actor is reachable from a root");
                }
                for a in lost {
                    writeln!(out, "{} {}  {} v{}", a.vat, a.id, a.type_name, a.version)?;
                }
                Ok(())
            })
        }
        StateCommand::Backup { file } => {
            let config = load_effective(explicit_config, &paths.default_config())?;
            let done = state::backup::backup(&paths.dir, &config, file)?;
            print(&done, json, out, |d, out| {
                writeln!(
                    out,
                    "backed up {} vats ({} portraits, {} commits) to {} ({} bytes)",
                    d.vats,
                    d.portraits,
                    d.commits,
                    d.file.display(),
                    d.bytes
                )
            })
        }
        StateCommand::RestoreBackup { file } => {
            let config = load_effective(explicit_config, &paths.default_config())?;
            let _lock = state::take(paths, "restore-backup")?;
            let done = state::backup::restore(&paths.dir, &config, file)?;
            print(&done, json, out, |d, out| {
                writeln!(
                    out,
                    "restored {} vats ({} portraits) into {}",
                    d.vats,
                    d.portraits,
                    d.file.display()
                )
            })
        }
        StateCommand::Convert { to } => {
            let config = load_effective(explicit_config, &paths.default_config())?;
            let _lock = state::take(paths, "convert")?;
            let done = state::convert::convert(&paths.dir, &config, *to)?;
            print(&done, json, out, |d, out| {
                writeln!(
                    out,
                    "moved {} vats ({} portraits, {} names) into {}; the old store is kept as \
                     {}. Now set `[store] kind = \"{}\"` in the config",
                    d.copied.vats,
                    d.copied.portraits,
                    d.copied.names,
                    d.store.display(),
                    d.old_kept_in.display(),
                    match to {
                        crate::config::StoreKind::Log => "log",
                        crate::config::StoreKind::Sqlite => "sqlite",
                    }
                )
            })
        }
        StateCommand::Rewind { to, yes } => {
            let dropped = state::rewind::preview(&paths.dir, *to)?;
            if !yes {
                print(&dropped, json, out, |dropped, out| {
                    for c in dropped {
                        writeln!(out, "would drop commit {}: {}", c.index, c.vats.join(", "))?;
                    }
                    writeln!(
                        out,
                        "{} commits after commit {to} would be dropped (the current store is \
                         kept beside it); run again with --yes to rewind",
                        dropped.len()
                    )
                })?;
                return Ok(1);
            }
            let config = load_effective(explicit_config, &paths.default_config())?;
            let _lock = state::take(paths, "rewind")?;
            let done = state::rewind::rewind(&paths.dir, &config, *to)?;
            print(&done, json, out, |d, out| {
                writeln!(
                    out,
                    "rewound to commit {to}: dropped {} commits; the store as it was is kept in {}",
                    d.commits_dropped,
                    d.kept_in.display()
                )
            })
        }
        StateCommand::CheckUpgrade => {
            let image = inspect::image(&paths.dir)?;
            let env = crate::actors::env::app_env().map_err(|e| {
                AppError::State(format!("this build's actor env does not build: {e}"))
            })?;
            let report = image.check_upgrade(&env);
            print(&report, json, out, |r, out| {
                for f in &r.failures {
                    let who = f.id.map_or_else(String::new, |id| format!(" actor {id}"));
                    writeln!(
                        out,
                        "FAILS  vat {}{who} ({} v{}): {}",
                        f.vat, f.type_name, f.version, f.reason
                    )?;
                }
                writeln!(
                    out,
                    "{} actors checked, {} saved by older versions; {} would not restore",
                    r.checked,
                    r.upgraded,
                    r.failures.len()
                )
            })?;
            Ok(u8::from(!report.failures.is_empty()))
        }
        StateCommand::History => {
            let image = inspect::image(&paths.dir)?;
            // A database has no frames: where a commit lies is a log's notion.
            let log = image.store.extension().is_some_and(|e| e == "log");
            let history = image.history.unwrap_or_default();
            print(&history, json, out, |history, out| {
                for c in history {
                    let place = if !log {
                        String::new()
                    } else if c.snapshot {
                        format!("snapshot at byte {:>10}  ", c.offset)
                    } else {
                        format!("commit   at byte {:>10}  ", c.offset)
                    };
                    writeln!(
                        out,
                        "{:>6}  {}  {place}{:>8} bytes  {} written, {} removed  {}",
                        c.index,
                        commit_time(c.time_ms),
                        c.bytes,
                        c.upserts,
                        c.removes,
                        c.vats.join(", ")
                    )?;
                }
                Ok(())
            })
        }
    }
}

/// A commit's time as RFC 3339 (UTC, to the millisecond), or "time unknown" for frames
/// written before the log recorded times (padded to the same width).
fn commit_time(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string(),
        None => format!("{:<24}", "time unknown"),
    }
}

fn parse_store_kind(value: &str) -> Result<crate::config::StoreKind, String> {
    crate::config::StoreKind::try_from(value.to_string())
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
