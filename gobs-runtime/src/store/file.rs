//! [`FileStore`]: the whole graph in one file, rewritten atomically on every commit.
//!
//!
//! The format is documented on [`FileStore`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::encoded::{EncodedGraph, encode_delta};
use super::fsutil::{StoreFiles, StoreLock, io_err};
use super::sync::{Syncer, Target};
use super::{Durability, Store, StoreError};
use crate::portrait::{Delta, Graph};

const MAGIC: &[u8; 8] = b"GOBSFILE";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 24;

/// A store that keeps the whole graph in one file.
///
/// Every commit rewrites the whole file (atomically: a temporary file, fsync, rename,
/// directory fsync), so its cost grows with the graph: use it for small graphs, or where
/// one self-contained file matters more than commit cost. The graph is also kept in memory,
/// encoded, so a commit only encodes what changed.
///
/// With [`Durability::Group`], the temporary file is still fsynced before every rename
/// (so the file is never torn), and only the directory fsync that makes the rename durable
/// is grouped: a power cut may bring back an older commit, within the group's bounds.
///
/// The store holds `<path>.lock` while open (see [`StoreError::Locked`]).
///
/// # File format (version 1)
///
/// | bytes | content |
/// | --- | --- |
/// | 0..8 | magic `GOBSFILE` |
/// | 8..12 | format version, `u32` little-endian (1) |
/// | 12..20 | body length `n`, `u64` little-endian |
/// | 20..24 | CRC-32 (IEEE) of the body, `u32` little-endian |
/// | 24..24+n | body: the [`Graph`], MessagePack (`rmp_serde`, structs as arrays) |
///
/// The file ends right after the body. A commit writes `<path>.tmp`, fsyncs it, renames it
/// over `<path>` and fsyncs the directory, so the file is always one whole commit.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    tmp: PathBuf,
    dir: File,
    dir_path: PathBuf,
    syncer: Syncer,
    /// The committed graph; `None` until the first commit.
    graph: Option<EncodedGraph>,
    /// The graph read at open, handed out by the first `load`.
    loaded: Option<Graph>,
    poisoned: Option<(String, super::StoreErrorKind)>,
    _lock: StoreLock,
}

impl FileStore {
    /// Opens (or prepares to create) the store at `path`, creating its directory if missing.
    ///
    /// Reads and checks the whole file: a damaged file gives [`StoreError::Corrupt`] and is
    /// left as it is. Another open handle on the same store gives [`StoreError::Locked`].
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let StoreFiles {
            path,
            dir,
            dir_path,
            lock,
            tmp,
        } = StoreFiles::open(path.as_ref())?;
        let (loaded, graph) = match read_store_file(&path) {
            Ok(bytes) => {
                let g = decode_file(&path, &bytes)?;
                let enc = EncodedGraph::from_graph(&g).map_err(|detail| StoreError::Encode {
                    path: path.clone(),
                    what: "the graph",
                    detail,
                })?;
                (Some(g), Some(enc))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, None),
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        let syncer = Syncer::new(durability, Target::Dir, &dir, &dir_path)?;
        Ok(FileStore {
            path,
            tmp,
            dir,
            dir_path,
            syncer,
            graph,
            loaded,
            poisoned: None,
            _lock: lock,
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability this store was opened with.
    pub fn durability(&self) -> Durability {
        self.syncer.durability()
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            Some((cause, kind)) => Err(StoreError::Poisoned {
                path: self.path.clone(),
                cause: cause.clone(),
                cause_kind: *kind,
            }),
            None => Ok(()),
        }
    }

    /// Writes `self.graph` to the file atomically; poisons the store on failure.
    fn write(&mut self) -> Result<(), StoreError> {
        let Some(graph) = &self.graph else {
            return Ok(());
        };
        let result = write_file(&self.tmp, graph).and_then(|()| {
            fs::rename(&self.tmp, &self.path).map_err(io_err("renaming into place", &self.path))
        });
        let result = result.and_then(|()| self.syncer.after_commit(&self.dir, &self.dir_path));
        if let Err(e) = &result {
            let _ = fs::remove_file(&self.tmp);
            self.poisoned = Some((e.to_string(), e.kind()));
        }
        result
    }
}

/// Writes the whole file to `tmp` and fsyncs it.
fn write_file(tmp: &Path, graph: &EncodedGraph) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err("creating", tmp))?;
    let body_len = graph.body_len().map_err(io_err("encoding", tmp))?;
    let mut crc = crc32fast::Hasher::new();
    let written = (|| -> io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 16, &mut file);
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&body_len.to_le_bytes())?;
        w.write_all(&[0; 4])?; // the CRC, written once known
        graph.write_body(&mut w, &mut crc)?;
        w.flush()?;
        drop(w);
        file.seek(SeekFrom::Start(20))?;
        file.write_all(&crc.finalize().to_le_bytes())?;
        Ok(())
    })();
    written.map_err(io_err("writing", tmp))?;
    super::fault::sync_data(&file, tmp).map_err(io_err("syncing", tmp))
}

/// Reads the store file, after checking its magic (so that a path pointing at some large
/// unrelated file fails fast instead of reading it all).
fn read_store_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = Vec::with_capacity(MAGIC.len());
    (&mut file)
        .take(MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    if head[..] != MAGIC[..head.len()] {
        return Ok(head); // decode_file reports the wrong magic
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    bytes.extend_from_slice(&head);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Checks and decodes a whole store file.
fn decode_file(path: &Path, bytes: &[u8]) -> Result<Graph, StoreError> {
    let corrupt = |offset: u64, detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        detail,
    };
    let file_len = bytes.len() as u64;
    let magic_seen = &bytes[..bytes.len().min(MAGIC.len())];
    if magic_seen != &MAGIC[..magic_seen.len()] {
        return Err(corrupt(
            0,
            format!(
                "not a gobs file store: it starts with {magic_seen:02x?}, not the magic `GOBSFILE`"
            ),
        ));
    }
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(corrupt(
            file_len,
            format!(
                "truncated header: the file has {file_len} bytes, the header alone {HEADER_LEN}"
            ),
        ));
    };
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&header[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let version = u32_at(8);
    if version != VERSION {
        return Err(corrupt(
            8,
            format!(
                "format version {version}; this gobs reads version {VERSION} (open it with the gobs that wrote it)"
            ),
        ));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&header[12..20]);
    let body_len = u64::from_le_bytes(len_bytes);
    let stored_crc = u32_at(20);
    let have = file_len - HEADER_LEN as u64;
    if body_len > have {
        return Err(corrupt(
            file_len,
            format!(
                "truncated: the header announces a body of {body_len} bytes, the file holds {have}"
            ),
        ));
    }
    if body_len < have {
        return Err(corrupt(
            HEADER_LEN as u64 + body_len,
            format!("{} unexpected bytes after the body", have - body_len),
        ));
    }
    let body = &bytes[HEADER_LEN..];
    let crc = crc32fast::hash(body);
    if crc != stored_crc {
        return Err(corrupt(
            HEADER_LEN as u64,
            format!(
                "body checksum mismatch (stored {stored_crc:08x}, computed {crc:08x}): the body was damaged"
            ),
        ));
    }
    let mut de = rmp_serde::Deserializer::new(Cursor::new(body));
    de.set_max_depth(super::MAX_DECODE_DEPTH);
    let graph: Graph = serde::Deserialize::deserialize(&mut de).map_err(|e| {
        corrupt(
            HEADER_LEN as u64 + de.position(),
            format!("the body does not decode as a graph: {e}"),
        )
    })?;
    if de.position() != body_len {
        return Err(corrupt(
            HEADER_LEN as u64 + de.position(),
            "unexpected bytes after the graph in the body".to_string(),
        ));
    }
    Ok(graph)
}

impl Store for FileStore {
    fn load(&mut self) -> Result<Option<Graph>, StoreError> {
        if let Some(g) = self.loaded.take() {
            return Ok(Some(g));
        }
        match &self.graph {
            None => Ok(None),
            Some(enc) => enc
                .to_graph()
                .map(Some)
                .map_err(|detail| StoreError::Corrupt {
                    path: self.path.clone(),
                    offset: 0,
                    detail: format!("the graph held in memory does not decode: {detail}"),
                }),
        }
    }

    fn commit(&mut self, delta: &Delta) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let enc = encode_delta(delta).map_err(|detail| StoreError::Encode {
            path: self.path.clone(),
            what: "a delta",
            detail,
        })?;
        self.loaded = None;
        self.graph
            .get_or_insert_with(EncodedGraph::default)
            .apply(enc);
        self.write()?;
        super::io_stats::count_commit();
        Ok(())
    }

    fn snapshot(&mut self, graph: &Graph) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let enc = EncodedGraph::from_graph(graph).map_err(|detail| StoreError::Encode {
            path: self.path.clone(),
            what: "the graph",
            detail,
        })?;
        self.loaded = None;
        self.graph = Some(enc);
        self.write()
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.check_poisoned()?;
        self.syncer.flush()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if self.poisoned.is_none()
            && self.syncer.has_unsynced()
            && let Err(e) = self.syncer.flush()
        {
            tracing::error!(error = %e, "closing a store: its last commits may not be durable");
        }
    }
}
