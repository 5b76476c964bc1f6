//! The local side of a copy sent whole in its request or answer, as `--connect` does
//! through a share (which carries no stream): reading the file to send (checked and sized,
//! at most [`MAX_FILE`], before anything is sent) and writing the file that came back (a
//! temporary file beside it, synced, then renamed over it: never a half file). Blocking.
//! The command line's own copies stream, of any size ([`super::copy`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::files::unpack::Unpacked;
use crate::files::{FileContent, FileMode, MAX_FILE, check_size};
use crate::ops::{PutFile, Request};

/// `request` ready to send: a `put-file`'s local file read into its content, and its mode,
/// when not given, taken from the local file. Other requests are returned as they are.
pub fn prepare(request: Request) -> Result<Request, AppError> {
    match request {
        Request::PutFile(put) => {
            let (bytes, local_mode) = read_local(&put.local)?;
            Ok(Request::PutFile(PutFile {
                mode: Some(put.mode.unwrap_or(local_mode)),
                content: FileContent(bytes),
                ..put
            }))
        }
        other => Ok(other),
    }
}

fn local_error(path: &Path, message: impl Into<String>) -> AppError {
    AppError::LocalFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads the regular file `path` whole, refusing one larger than [`MAX_FILE`] before
/// reading it; answers its bytes and permission bits.
pub fn read_local(path: &Path) -> Result<(Vec<u8>, FileMode), AppError> {
    let cannot = |e: io::Error| {
        let hint = match e.kind() {
            io::ErrorKind::NotFound => "; check the path",
            io::ErrorKind::PermissionDenied => "; check its permissions (and its directory's)",
            _ => "",
        };
        local_error(path, format!("cannot read it: {e}{hint}"))
    };
    let file = File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if meta.is_dir() {
        return Err(local_error(
            path,
            "it is a directory; put-file copies one file (archive a directory first, e.g. \
             with tar)",
        ));
    }
    if !meta.is_file() {
        return Err(local_error(
            path,
            "it is not a regular file (a device, fifo or socket); put-file copies regular \
             files only",
        ));
    }
    let too_large = |size: u64| {
        check_size(&format!("local file {}", path.display()), size)
            .map_err(|message| AppError::FileTooLarge { message })
    };
    too_large(meta.len())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    // It may have grown since it was looked at.
    too_large(bytes.len() as u64)?;
    Ok((bytes, FileMode::of(meta.mode())))
}

/// Replaces `path` with `bytes`, all or nothing: a temporary file in the same directory,
/// synced, renamed over `path`, and the directory synced. An existing file keeps its
/// permission bits; a new one is private to its owner (0600). On failure nothing is left
/// behind and `path` is as it was.
pub fn write_local(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name() else {
        return Err(local_error(
            path,
            "it names no file; give the path of the file to write",
        ));
    };
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(local_error(
                path,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(local_error(
                path,
                format!(
                    "directory {} does not exist; create it, or give another LOCAL_PATH",
                    dir.display()
                ),
            ));
        }
        Err(e) => {
            return Err(local_error(
                path,
                format!("cannot look at {}: {e}", dir.display()),
            ));
        }
    }
    let existing = fs::metadata(path).ok();
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(local_error(
            path,
            "it is a directory; give the path of the file to write (LOCAL_PATH names the \
             file itself)",
        ));
    }
    let mode = existing.map_or(0o600, |m| m.mode() & 0o7777);
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag)
        .map_err(|e| local_error(path, format!("cannot draw a temporary name: {e}")))?;
    let tmp = dir.join(format!(
        ".{}.gobs-get-{}",
        name.to_string_lossy(),
        data_encoding::HEXLOWER.encode(&tag)
    ));
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        let hint = match e.kind() {
            io::ErrorKind::StorageFull => "; free some disk space and copy it again",
            io::ErrorKind::PermissionDenied => "; check the directory's permissions",
            _ => "",
        };
        local_error(
            path,
            format!("cannot write it: {e}{hint} (it was left as it was)"),
        )
    })
}

/// What [`write_local`] wrote, as a streamed copy reports it: one file, its size, the
/// permission bits `mode` and its sha256.
pub fn written(bytes: &[u8], mode: u32) -> Unpacked {
    Unpacked {
        files: 1,
        bytes: bytes.len() as u64,
        mode,
        sha256: Some(data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn reading_refuses_what_cannot_be_sent_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_local(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope") && err.contains("check the path"),
            "{err}"
        );
        let err = read_local(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        let big = dir.path().join("big");
        fs::write(&big, vec![1u8; MAX_FILE + 1]).unwrap();
        let err = read_local(&big).unwrap_err();
        assert_eq!(err.kind(), "file-too-large");
        let err = err.to_string();
        assert!(
            err.contains("524289 bytes") && err.contains("at most 524288"),
            "{err}"
        );
        let exact = dir.path().join("exact");
        fs::write(&exact, vec![2u8; MAX_FILE]).unwrap();
        fs::set_permissions(&exact, fs::Permissions::from_mode(0o751)).unwrap();
        let (bytes, mode) = read_local(&exact).unwrap();
        assert_eq!((bytes.len(), mode), (MAX_FILE, FileMode(0o751)));
    }

    #[test]
    fn writing_replaces_whole_keeps_modes_and_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_local(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_local(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        let err = write_local(&dir.path().join("no/such/x"), b"z")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = write_local(dir.path(), b"z").unwrap_err().to_string();
        assert!(
            err.contains("names no file") || err.contains("is a directory"),
            "{err}"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.bin"], "no temporary file is left");
    }
}
