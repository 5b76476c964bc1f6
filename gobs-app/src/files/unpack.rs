//! The writing side of a copy: a copy's stream ([`super::archive`]) written at its target,
//! all or nothing. Shared by the hob-client (`put-file`) and the command line
//! (`get-file`). Blocking.
//!
//! - **A file** is written to a temporary file beside the target, its sha256 checked,
//!   its mode, mtime (and, where this process is root, owner) set, synced, then renamed
//!   over the target and the directory synced.
//! - **A directory** (`-r`) is built whole beside the target, under a temporary name, every
//!   file synced and checked as it comes, then put in the target's place in one rename: an
//!   existing directory there is exchanged with it (`renameat2(RENAME_EXCHANGE)`) and then
//!   removed, so the target is always either the old tree or the new one, never a mix.
//!   An entry whose parent is not a directory of the copy itself is refused, so nothing is
//!   written outside the target (a symlink in the copy is never written through).
//!
//! On any failure (a checksum mismatch, a stream cut short, a full disk) the temporary file
//! or tree is removed and the target is as it was.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::archive::{ArchiveReader, Content, Header, Meta};
use crate::model::shown;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The root's permission bits.
    pub mode: u32,
    /// The root's sha256 (hex), if it is a file.
    pub sha256: Option<String>,
}

/// Removes a temporary file or tree unless the copy went through.
struct Leftover(Option<PathBuf>);

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
}

/// Writes the stream `input` at `target` (`where_`: "here" or "on this machine", for
/// errors); `progress` is told each chunk's length as it is written.
pub fn unpack(
    input: impl Read,
    target: &Path,
    where_: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Unpacked, String> {
    let shown_target = target.display();
    let (dir, name) = match (target.parent(), target.file_name()) {
        (Some(d), Some(n)) => (
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            },
            n,
        ),
        _ => return Err(format!("{shown_target} names no file; add the file's name")),
    };
    check_dir(dir, where_)?;
    let (mut reader, _files, _bytes) = ArchiveReader::open(input)?;
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).map_err(|e| format!("cannot draw a temporary name: {e}"))?;
    let tmp = dir.join(format!(
        ".{}.gobs-copy-{}",
        name.to_string_lossy(),
        data_encoding::HEXLOWER.encode(&tag)
    ));
    let existing = fs::symlink_metadata(target).ok();
    let mut leftover = Leftover(None);
    // A tree's entries are read up to the stream's end; a file or a link is all of it.
    let mut read_to_end = false;
    let done = match reader.next_entry()? {
        Header::File { path, meta, size } if path.is_empty() => {
            if existing.as_ref().is_some_and(|m| m.is_dir()) {
                return Err(format!(
                    "{shown_target} is a directory {where_}; give the path of the file to \
                     write (or copy a directory with -r)"
                ));
            }
            leftover.0 = Some(tmp.clone());
            let sha = write_file(&mut reader, &tmp, &meta, size, progress)
                .map_err(|e| e.about(&format!("{shown_target} {where_}")))?;
            Unpacked {
                files: 1,
                bytes: size,
                mode: meta.mode,
                sha256: Some(sha),
            }
        }
        Header::Dir { path, meta } if path.is_empty() => {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                return Err(format!(
                    "{shown_target} {where_} is not a directory; remove it first, or copy \
                     the directory to another path"
                ));
            }
            leftover.0 = Some(tmp.clone());
            let (files, bytes) = write_tree(&mut reader, &tmp, meta, where_, progress)?;
            read_to_end = true;
            Unpacked {
                files,
                bytes,
                mode: meta.mode,
                sha256: None,
            }
        }
        Header::Symlink {
            path,
            target: to,
            meta,
        } if path.is_empty() => {
            leftover.0 = Some(tmp.clone());
            std::os::unix::fs::symlink(&to, &tmp)
                .map_err(|e| format!("cannot write {shown_target} {where_}: {e}"))?;
            set_owner_and_time(&tmp, &meta, false)
                .map_err(|e| format!("cannot write {shown_target} {where_}: {e}"))?;
            Unpacked {
                files: 0,
                bytes: 0,
                mode: meta.mode,
                sha256: None,
            }
        }
        other => {
            return Err(format!(
                "the copy's stream starts with {other:?}, not its root entry"
            ));
        }
    };
    if !read_to_end {
        match reader.next_entry()? {
            Header::End { .. } => {}
            other => {
                return Err(format!(
                    "the copy's stream goes on past its root: {other:?}"
                ));
            }
        }
    }
    put_in_place(&tmp, target, existing.as_ref().is_some_and(|m| m.is_dir()))
        .map_err(|e| format!("cannot put {shown_target} in place {where_}: {e}"))?;
    leftover.0 = None;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {} {where_}: {e}", dir.display()))?;
    Ok(done)
}

/// Writes a stream of one file to `out` (standard output: not atomic, but the checksum is
/// still checked at the end); answers what was written.
pub fn unpack_to(
    input: impl Read,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Unpacked, String> {
    let (mut reader, _, _) = ArchiveReader::open(input)?;
    let Header::File { path, meta, size } = reader.next_entry()? else {
        return Err(
            "the copy is not one file; give a local path to write a directory to".to_string(),
        );
    };
    if !path.is_empty() {
        return Err("the copy's stream starts past its root".to_string());
    }
    let sha = reader
        .content(size, out, progress)
        .map_err(|e| e.about("the file"))?;
    match reader.next_entry()? {
        Header::End { .. } => Ok(Unpacked {
            files: 1,
            bytes: size,
            mode: meta.mode,
            sha256: Some(sha),
        }),
        other => Err(format!(
            "the copy's stream goes on past its file: {other:?}"
        )),
    }
}

fn check_dir(dir: &Path, where_: &str) -> Result<(), String> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory {where_}", dir.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "directory {} does not exist {where_}; create it first (`mkdir -p {}`)",
            dir.display(),
            dir.display()
        )),
        Err(e) => Err(format!("cannot look at {} {where_}: {e}", dir.display())),
    }
}

/// Writes one file of the stream at `at` (a new name), synced, its metadata set.
fn write_file<R: Read>(
    reader: &mut ArchiveReader<R>,
    at: &Path,
    meta: &Meta,
    size: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<String, Content> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(at)
        .map_err(Content::Write)?;
    let sha = reader.content(size, &mut file, progress)?;
    // fchmod, not the open's mode: the umask must not change what was asked.
    file.set_permissions(fs::Permissions::from_mode(meta.mode))
        .map_err(Content::Write)?;
    if as_root() {
        std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid)).map_err(Content::Write)?;
        // chown clears set-id bits: set them again.
        file.set_permissions(fs::Permissions::from_mode(meta.mode))
            .map_err(Content::Write)?;
    }
    file.set_times(fs::FileTimes::new().set_modified(mtime(meta)))
        .map_err(Content::Write)?;
    file.sync_all().map_err(Content::Write)?;
    Ok(sha)
}

/// Builds the tree under `root` (a new name) from the stream's entries up to its end.
fn write_tree<R: Read>(
    reader: &mut ArchiveReader<R>,
    root: &Path,
    root_meta: Meta,
    where_: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, u64), String> {
    fs::create_dir(root).map_err(|e| format!("cannot create {} {where_}: {e}", root.display()))?;
    let mut dirs: HashSet<String> = HashSet::from([String::new()]);
    let mut made = vec![(root.to_path_buf(), root_meta)];
    let (mut files, mut bytes) = (0u64, 0u64);
    loop {
        let header = reader.next_entry()?;
        let path = match &header {
            Header::End { .. } => break,
            Header::File { path, .. } | Header::Dir { path, .. } | Header::Symlink { path, .. } => {
                path.clone()
            }
            Header::Begin { .. } => unreachable!("refused by the reader"),
        };
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        if path.is_empty() || !dirs.contains(parent) {
            return Err(format!(
                "the copy's entry {} is not under a directory the copy made before it: \
                 refused, as it could escape the target",
                shown(&path)
            ));
        }
        let at = root.join(&path);
        let cannot = |e: io::Error| format!("cannot write {} {where_}: {e}", at.display());
        match header {
            Header::File { meta, size, .. } => {
                write_file(reader, &at, &meta, size, progress)
                    .map_err(|e| e.about(&format!("{} {where_}", at.display())))?;
                files += 1;
                bytes += size;
            }
            Header::Dir { meta, .. } => {
                fs::create_dir(&at).map_err(cannot)?;
                dirs.insert(path);
                made.push((at, meta));
            }
            Header::Symlink { target, meta, .. } => {
                std::os::unix::fs::symlink(&target, &at).map_err(cannot)?;
                set_owner_and_time(&at, &meta, false).map_err(cannot)?;
            }
            Header::End { .. } | Header::Begin { .. } => {}
        }
    }
    // Deepest first: a directory's mtime is set after everything in it was written.
    for (at, meta) in made.iter().rev() {
        let cannot = |e: io::Error| format!("cannot finish {} {where_}: {e}", at.display());
        set_owner_and_time(at, meta, true).map_err(cannot)?;
        File::open(at).and_then(|d| d.sync_all()).map_err(cannot)?;
    }
    Ok((files, bytes))
}

/// Sets a directory's mode (if `with_mode`) or a symlink's, its owner where root, and its
/// mtime, without following a symlink.
fn set_owner_and_time(at: &Path, meta: &Meta, with_mode: bool) -> io::Result<()> {
    if as_root() {
        std::os::unix::fs::lchown(at, Some(meta.uid), Some(meta.gid))?;
    }
    if with_mode {
        fs::set_permissions(at, fs::Permissions::from_mode(meta.mode))?;
    }
    let when = rustix::fs::Timespec {
        tv_sec: meta.mtime,
        tv_nsec: meta.mtime_nsec.into(),
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        at,
        &rustix::fs::Timestamps {
            last_access: when,
            last_modification: when,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Puts `tmp` where `target` is: renamed over a file, exchanged with a directory (then the
/// old tree, now at `tmp`, removed).
fn put_in_place(tmp: &Path, target: &Path, over_dir: bool) -> io::Result<()> {
    if !over_dir {
        return fs::rename(tmp, target);
    }
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        tmp,
        rustix::fs::CWD,
        target,
        rustix::fs::RenameFlags::EXCHANGE,
    )?;
    // The old tree is gone from the target; failing to remove it loses nothing of the copy.
    if let Err(e) = fs::remove_dir_all(tmp) {
        tracing::warn!("cannot remove the replaced tree at {}: {e}", tmp.display());
    }
    Ok(())
}

fn mtime(meta: &Meta) -> SystemTime {
    let nanos = Duration::from_nanos(meta.mtime_nsec.into());
    match u64::try_from(meta.mtime) {
        Ok(secs) => SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + nanos,
        Err(_) => SystemTime::UNIX_EPOCH - Duration::from_secs(meta.mtime.unsigned_abs()) + nanos,
    }
}

/// Whether owners are kept: only root may give files away.
fn as_root() -> bool {
    rustix::process::geteuid().is_root()
}
