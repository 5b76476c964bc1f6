//! The reading side of a copy: a file, or with `-r` a tree, walked and written as the copy's
//! stream ([`super::archive`]). Shared by the command line (`put-file`) and the hob-client
//! (`get-file`). Blocking.

use std::fs::{self, File, Metadata};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::archive::{ArchiveWriter, Header, Meta};
use crate::model::shown;

/// What a walk found: the entries, parents first, and the totals.
pub struct Plan {
    entries: Vec<Planned>,
    /// Regular files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

struct Planned {
    /// Relative, `/`-separated; `""` for the root.
    path: String,
    at: PathBuf,
    meta: Metadata,
}

/// An entry's mode, owner and mtime.
fn meta_of(m: &Metadata) -> Meta {
    Meta {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.mtime(),
        mtime_nsec: u32::try_from(m.mtime_nsec()).unwrap_or(0),
    }
}

/// Walks `root` (`where_`: "here" or "on this machine", for errors): a regular file, or,
/// with `recursive`, a directory and everything under it (symlinks as links, never
/// followed). Other kinds of file are refused, naming them.
pub fn plan(root: &Path, recursive: bool, where_: &str) -> Result<Plan, String> {
    let shown_root = root.display();
    let meta = fs::symlink_metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("there is no file {shown_root} {where_}; check the path")
        }
        _ => format!("cannot read {shown_root} {where_}: {e}"),
    })?;
    let meta = if meta.file_type().is_symlink() {
        // The root is what the user named: followed.
        fs::metadata(root).map_err(|e| format!("cannot follow {shown_root} {where_}: {e}"))?
    } else {
        meta
    };
    if meta.is_dir() && !recursive {
        return Err(format!(
            "{shown_root} is a directory {where_}; copy a directory and everything in it with -r"
        ));
    }
    let mut plan = Plan {
        entries: Vec::new(),
        files: 0,
        bytes: 0,
    };
    let mut stack = vec![(String::new(), root.to_path_buf(), meta)];
    while let Some((path, at, meta)) = stack.pop() {
        let kind = meta.file_type();
        if kind.is_file() {
            plan.files += 1;
            plan.bytes += meta.len();
        } else if kind.is_dir() {
            let mut children = fs::read_dir(&at)
                .and_then(|d| d.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot list {} {where_}: {e}", at.display()))?;
            children.sort_by_key(|c| std::cmp::Reverse(c.file_name()));
            for child in children {
                let name = child.file_name();
                let name = name.to_str().ok_or_else(|| {
                    format!(
                        "{} {where_} has a name that is not UTF-8; rename it to copy it",
                        child.path().display()
                    )
                })?;
                let child_meta = child
                    .metadata()
                    .map_err(|e| format!("cannot read {} {where_}: {e}", child.path().display()))?;
                let child_path = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}/{name}")
                };
                stack.push((child_path, child.path(), child_meta));
            }
        } else if !kind.is_symlink() {
            return Err(format!(
                "{} {where_} is not a regular file, directory or symlink (a device, fifo or \
                 socket); move it out of the way to copy the rest",
                at.display()
            ));
        }
        plan.entries.push(Planned { path, at, meta });
    }
    Ok(plan)
}

/// Writes `plan` as a copy's stream to `out`, the root's mode `mode` if given; `progress`
/// is told each chunk's length.
pub fn pack(
    plan: &Plan,
    mode: Option<u32>,
    out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<(), String> {
    let failed = |what: &Path, e: std::io::Error| format!("cannot copy {}: {e}", what.display());
    let mut w = ArchiveWriter::begin(out, plan.files, plan.bytes)
        .map_err(|e| format!("the copy's stream failed: {e}"))?;
    for entry in &plan.entries {
        let mut meta = meta_of(&entry.meta);
        if entry.path.is_empty()
            && let Some(mode) = mode
        {
            meta.mode = mode;
        }
        let kind = entry.meta.file_type();
        let path = entry.path.clone();
        if kind.is_file() {
            let mut file = File::open(&entry.at).map_err(|e| failed(&entry.at, e))?;
            w.file(&path, meta, entry.meta.len(), &mut file, progress)
                .map_err(|e| failed(&entry.at, e))?;
        } else if kind.is_dir() {
            w.entry(&Header::Dir { path, meta })
                .map_err(|e| failed(&entry.at, e))?;
        } else {
            let target = fs::read_link(&entry.at).map_err(|e| failed(&entry.at, e))?;
            let target = target
                .to_str()
                .ok_or_else(|| {
                    format!(
                        "the symlink {} points to a name that is not UTF-8 ({})",
                        entry.at.display(),
                        shown(&target.to_string_lossy())
                    )
                })?
                .to_string();
            w.entry(&Header::Symlink { path, target, meta })
                .map_err(|e| failed(&entry.at, e))?;
        }
    }
    w.finish()
        .map_err(|e| format!("the copy's stream failed: {e}"))?;
    Ok(())
}
