//! The byte stream `put-file` and `get-file` carry from the side that reads the files to
//! the side that writes them, whatever hops it crosses (the control socket's frames, the
//! boss, the hob wire's chunks): a file or a tree, with each entry's kind, path, mode,
//! owner and mtime, and each file's bytes followed by their sha256, so the writer checks
//! what it wrote against what the reader read.
//!
//! ```text
//! "GOBSFIL1"                                magic and version
//! u32 BE length, JSON Header::Begin         the totals, for progress only
//! u32 BE length, JSON Header::Dir/File/...  one per entry; the first is the root, path ""
//!   (a File: then its `size` bytes, then the 32 bytes of their sha256)
//! u32 BE length, JSON Header::End           how many entries there were
//! ```
//!
//! Paths are relative to the root, `/`-separated, with no `.`, `..` or empty part
//! ([`check_entry_path`]); an entry's parent is an earlier directory entry (checked by the
//! writer, [`super::unpack`]). A reader is not trusted: headers are at most
//! [`MAX_HEADER`] bytes, entries at most [`MAX_ENTRIES`].

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::MAX_REMOTE_PATH;
use crate::model::shown;

/// The stream's first bytes: its kind and version.
pub const MAGIC: &[u8; 8] = b"GOBSFIL1";

/// Longest header, bytes (a path of [`MAX_REMOTE_PATH`] and a symlink's target of as much
/// fit, escaped).
pub const MAX_HEADER: usize = 64 * 1024;

/// Most entries one stream may hold.
pub const MAX_ENTRIES: u64 = 1 << 22;

/// An entry's permission bits, owner and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Permission bits (at most `0o7777`).
    pub mode: u32,
    /// Owner's uid (kept where the writer is root).
    pub uid: u32,
    /// Group's gid (kept where the writer is root).
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Its nanoseconds.
    pub mtime_nsec: u32,
}

/// One record of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Header {
    /// First: how many files and bytes follow (shown as progress, never trusted).
    Begin {
        /// Regular files.
        files: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// A regular file; its bytes and their sha256 follow.
    File {
        /// Where, under the root.
        path: String,
        /// Its mode, owner, mtime.
        meta: Meta,
        /// Its length.
        size: u64,
    },
    /// A directory; its entries follow, each after its parent.
    Dir {
        /// Where, under the root.
        path: String,
        /// Its mode, owner, mtime.
        meta: Meta,
    },
    /// A symbolic link, kept as a link (its target is not followed).
    Symlink {
        /// Where, under the root.
        path: String,
        /// What it points to, as written.
        target: String,
        /// Its owner and mtime (a link has no mode of its own).
        meta: Meta,
    },
    /// Last: the number of entries before it.
    End {
        /// Entries sent.
        entries: u64,
    },
}

/// Checks an entry's path: `""` (the root) or relative parts that stay under the root.
///
/// ```
/// use gobs_app::files::archive::check_entry_path;
/// assert!(check_entry_path("a/b.txt").is_ok() && check_entry_path("").is_ok());
/// for bad in ["/etc/passwd", "a/../../x", "./a", "a//b", "a/"] {
///     assert!(check_entry_path(bad).unwrap_err().contains("escape"), "{bad}");
/// }
/// ```
pub fn check_entry_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    let escapes = path.starts_with('/')
        || path.contains('\0')
        || path.len() > MAX_REMOTE_PATH
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..");
    if escapes {
        return Err(format!(
            "the entry {} would escape the copy's target (entries are relative paths \
             without `.`, `..` or empty parts)",
            shown(path)
        ));
    }
    Ok(())
}

/// Writes a stream.
pub struct ArchiveWriter<W: Write> {
    out: W,
    entries: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts a stream of `files` regular files of `bytes` bytes in all.
    pub fn begin(mut out: W, files: u64, bytes: u64) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        let mut w = ArchiveWriter { out, entries: 0 };
        w.record(&Header::Begin { files, bytes })?;
        Ok(w)
    }

    fn record(&mut self, header: &Header) -> io::Result<()> {
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        if json.len() > MAX_HEADER {
            return Err(io::Error::other(format!(
                "an entry's header is {} bytes, more than {MAX_HEADER}",
                json.len()
            )));
        }
        self.out.write_all(&(json.len() as u32).to_be_bytes())?;
        self.out.write_all(&json)
    }

    /// Writes a directory or symlink entry.
    pub fn entry(&mut self, header: &Header) -> io::Result<()> {
        self.entries += 1;
        self.record(header)
    }

    /// Writes a file entry: its header, exactly `size` bytes of `content`, their sha256;
    /// `progress` is told each chunk's length. A content shorter or longer than `size`
    /// (a file that changed while read) is an error.
    pub fn file(
        &mut self,
        path: &str,
        meta: Meta,
        size: u64,
        content: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        self.entries += 1;
        self.record(&Header::File {
            path: path.to_string(),
            meta,
            size,
        })?;
        let mut hash = Sha256::new();
        let mut left = size;
        let mut buf = vec![0u8; crate::run_io::CHUNK];
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match content.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::other(format!(
                        "it shrank while it was copied ({left} of its {size} bytes were \
                         missing); copy it again once it is left alone"
                    )));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hash.update(&buf[..n]);
            self.out.write_all(&buf[..n])?;
            left -= n as u64;
            progress(n as u64);
        }
        if content.read(&mut [0u8; 1])? != 0 {
            return Err(io::Error::other(format!(
                "it grew while it was copied (past its {size} bytes); copy it again once it \
                 is left alone"
            )));
        }
        self.out.write_all(&hash.finalize())
    }

    /// Ends the stream; the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        let entries = self.entries;
        self.record(&Header::End { entries })?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a stream, trusting nothing of it.
pub struct ArchiveReader<R: Read> {
    input: R,
    entries: u64,
}

impl<R: Read> ArchiveReader<R> {
    /// Opens a stream: its totals (files, bytes), as the sender announced them.
    pub fn open(mut input: R) -> Result<(Self, u64, u64), String> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|e| format!("the copy's stream ended before it began ({e})"))?;
        if &magic != MAGIC {
            return Err(
                "the copy's stream is not one gobs-app writes (another version on the other \
                 side?)"
                    .to_string(),
            );
        }
        let mut reader = ArchiveReader { input, entries: 0 };
        match reader.record()? {
            Header::Begin { files, bytes } => Ok((reader, files, bytes)),
            other => Err(format!(
                "the copy's stream starts with {other:?}, not its totals"
            )),
        }
    }

    fn record(&mut self) -> Result<Header, String> {
        let cut = |e: io::Error| format!("the copy's stream was cut short ({e})");
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len).map_err(cut)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_HEADER {
            return Err(format!(
                "the copy's stream has a header of {len} bytes (at most {MAX_HEADER})"
            ));
        }
        let mut json = vec![0u8; len];
        self.input.read_exact(&mut json).map_err(cut)?;
        serde_json::from_slice(&json)
            .map_err(|e| format!("the copy's stream has a bad header: {e}"))
    }

    /// The next entry, its path checked ([`check_entry_path`]), or the stream's end
    /// (checked against the entries read).
    pub fn next_entry(&mut self) -> Result<Header, String> {
        let header = self.record()?;
        match &header {
            Header::File { path, meta, .. }
            | Header::Dir { path, meta }
            | Header::Symlink { path, meta, .. } => {
                check_entry_path(path)?;
                if meta.mode > 0o7777 {
                    return Err(format!(
                        "the entry {} has mode {:o}, more than permission bits",
                        shown(path),
                        meta.mode
                    ));
                }
                self.entries += 1;
                if self.entries > MAX_ENTRIES {
                    return Err(format!(
                        "the copy has more than {MAX_ENTRIES} entries; copy it in parts"
                    ));
                }
            }
            Header::End { entries } if *entries != self.entries => {
                return Err(format!(
                    "the copy's stream ended saying {entries} entries, but {} came",
                    self.entries
                ));
            }
            Header::End { .. } => {}
            Header::Begin { .. } => return Err("the copy's stream began twice".to_string()),
        }
        Ok(header)
    }

    /// Copies the `size` bytes of the file entry just read to `to`, then checks them
    /// against the sha256 that follows; answers that sha256, in hex. `progress` is told
    /// each chunk's length.
    pub fn content(
        &mut self,
        size: u64,
        to: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<String, Content> {
        let mut hash = Sha256::new();
        let mut left = size;
        let mut buf = vec![0u8; crate::run_io::CHUNK];
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match self.input.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(Content::Stream(format!(
                        "the copy's stream ended {left} bytes before the end of a file of {size}"
                    )));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Content::Stream(format!("the copy's stream failed: {e}"))),
            };
            hash.update(&buf[..n]);
            to.write_all(&buf[..n]).map_err(Content::Write)?;
            left -= n as u64;
            progress(n as u64);
        }
        let mut sent = [0u8; 32];
        self.input
            .read_exact(&mut sent)
            .map_err(|e| Content::Stream(format!("the copy's stream was cut short ({e})")))?;
        let got = hash.finalize();
        let hex = data_encoding::HEXLOWER.encode(&got);
        if got.as_slice() != sent {
            return Err(Content::Mismatch {
                sent: data_encoding::HEXLOWER.encode(&sent),
                got: hex,
            });
        }
        Ok(hex)
    }
}

/// Why a file's content could not be taken.
#[derive(Debug)]
pub enum Content {
    /// The stream failed or was malformed.
    Stream(String),
    /// Writing it failed.
    Write(io::Error),
    /// Its bytes are not what the sender read: their sha256 differ.
    Mismatch {
        /// The sender's.
        sent: String,
        /// Of the bytes received.
        got: String,
    },
}

impl Content {
    /// In words, for file `what`.
    pub fn about(self, what: &str) -> String {
        match self {
            Content::Stream(why) => format!("{why} (while copying {what})"),
            Content::Write(e) => {
                let hint = match e.kind() {
                    io::ErrorKind::PermissionDenied => format!(
                        "; the copy is written by a process that runs as uid {}",
                        rustix::process::geteuid().as_raw()
                    ),
                    io::ErrorKind::StorageFull => "; free some space there".to_string(),
                    _ => String::new(),
                };
                format!("cannot write {what}: {e}{hint}")
            }
            Content::Mismatch { sent, got } => format!(
                "the sha256 of {what} as received ({got}) is not the sender's ({sent}): its \
                 bytes were changed on the way, so the copy was refused"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn meta() -> Meta {
        Meta {
            mode: 0o640,
            uid: 1,
            gid: 2,
            mtime: 1_700_000_000,
            mtime_nsec: 5,
        }
    }

    fn one_file(bytes: &[u8]) -> Vec<u8> {
        let mut w = ArchiveWriter::begin(Vec::new(), 1, bytes.len() as u64).unwrap();
        w.file("", meta(), bytes.len() as u64, &mut &bytes[..], &mut |_| {})
            .unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_stream_round_trips_and_its_checksum_catches_a_changed_byte() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let stream = one_file(&bytes);
        let (mut r, files, total) = ArchiveReader::open(&stream[..]).unwrap();
        assert_eq!((files, total), (1, bytes.len() as u64));
        let Header::File { size, meta: m, .. } = r.next_entry().unwrap() else {
            panic!("a file first")
        };
        assert_eq!(m, meta());
        let mut got = Vec::new();
        r.content(size, &mut got, &mut |_| {}).unwrap();
        assert_eq!(got, bytes);
        assert_eq!(r.next_entry().unwrap(), Header::End { entries: 1 });

        let mut bad = stream.clone();
        let at = bad.len() - 1000;
        bad[at] ^= 1;
        let (mut r, _, _) = ArchiveReader::open(&bad[..]).unwrap();
        let Header::File { size, .. } = r.next_entry().unwrap() else {
            panic!()
        };
        let err = r.content(size, &mut Vec::new(), &mut |_| {}).unwrap_err();
        assert!(
            err.about("x").contains("changed on the way"),
            "a flipped byte is a mismatch"
        );
    }

    #[test]
    fn a_reader_refuses_what_is_not_a_stream_or_breaks_its_bounds() {
        assert!(ArchiveReader::open(&b"tar?"[..]).is_err());
        assert!(
            ArchiveReader::open(&b"NOTGOBS!xxxx"[..])
                .err()
                .unwrap()
                .contains("not one gobs-app writes")
        );
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(
            ArchiveReader::open(&huge[..])
                .err()
                .unwrap()
                .contains("at most")
        );
        let stream = one_file(b"abc");
        // Inside the sha256, before the end's record (30 bytes).
        let cut = &stream[..stream.len() - 40];
        let (mut r, _, _) = ArchiveReader::open(cut).unwrap();
        r.next_entry().unwrap();
        let err = r.content(3, &mut Vec::new(), &mut |_| {}).unwrap_err();
        assert!(err.about("x").contains("cut short"));
    }

    #[test]
    fn a_file_that_changes_while_read_is_refused() {
        let mut w = ArchiveWriter::begin(Vec::new(), 1, 10).unwrap();
        let err = w
            .file("", meta(), 10, &mut &b"short"[..], &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
        let mut w = ArchiveWriter::begin(Vec::new(), 1, 2).unwrap();
        let err = w
            .file("", meta(), 2, &mut &b"longer"[..], &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("grew"), "{err}");
    }
}
