//! Files of the one-vat formats that came before every store was a [`Store`]
//! of vats: a lone persistent vat's log (a [`LogStore`] whose graph is the vat's own), and
//! the whole-graph file (`GOBSFILE`, the former `FileStore`, which rewrote the whole graph
//! at every commit).
//!
//! The log store converts both on open, naming the vat [`ONE_VAT`]: the graph goes into
//! the log store's layout in one atomic write, the old file is kept beside the store
//! (`<path>.one-vat`) and a warning names it. Nothing is converted in a read-only open:
//! a one-vat log is read as it is, a whole-graph file is refused with what to do.
//! Per-vat files of an old registry directory are migrated by
//! [`migrate`](crate::persist::migrate), which reads them with [`read_lone_vat_file`].
//!
//! # The whole-graph file (version 1)
//!
//! | bytes | content |
//! | --- | --- |
//! | 0..8 | magic `GOBSFILE` |
//! | 8..12 | format version, `u32` little-endian (1) |
//! | 12..20 | body length `n`, `u64` little-endian |
//! | 20..24 | CRC-32 (IEEE) of the body, `u32` little-endian |
//! | 24..24+n | body: the [`Graph`], MessagePack (`rmp_serde`, structs as arrays) |

use std::fs::{self, File};
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use super::encoded::EncodedGraph;
use super::fsutil::{StoreFiles, io_err, sibling};
use super::log::write_snapshot_file;
use super::log_layout::one_vat_layout;
use super::{LogOptions, LogStore, RegistryLogStore, Store, StoreError, VatRecord};
use crate::portrait::Graph;

/// The name a converted file's vat gets (a lone vat takes whatever name the one vat of
/// its store has: see [`PersistentVat`](crate::PersistentVat)).
pub const ONE_VAT: &str = "vat";

const MAGIC: &[u8; 8] = b"GOBSFILE";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 24;

/// Where a converted file's old bytes are kept.
pub fn kept_path(store: &Path) -> PathBuf {
    sibling(store, ".one-vat")
}

/// The graph of a lone vat's file (a log of either layout, or a whole-graph file), read
/// only; `None` for a log never written.
pub fn read_lone_vat_file(path: &Path) -> Result<Option<Graph>, StoreError> {
    if starts_with_magic(path)? {
        let bytes = read_whole_graph_file(path).map_err(io_err("reading", path))?;
        return decode_whole_graph_file(path, &bytes).map(Some);
    }
    let options = LogOptions {
        read_only: true,
        ..LogOptions::default()
    };
    let mut vats = RegistryLogStore::open(path, options)?.load()?;
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail,
    };
    if vats.len() > 1 {
        let held: Vec<&str> = vats.keys().map(String::as_str).collect();
        return Err(corrupt(format!(
            "a lone vat's store holds one vat, this one {} ({})",
            held.len(),
            held.join(", ")
        )));
    }
    match vats.pop_first() {
        None | Some((_, VatRecord::Listed)) => Ok(None),
        Some((_, VatRecord::Saved(graph))) => Ok(Some(graph)),
        Some((vat, VatRecord::Damaged(why))) => Err(corrupt(format!("vat \"{vat}\": {why}"))),
    }
}

/// True when `path` is a whole-graph file (missing: false).
fn starts_with_magic(path: &Path) -> Result<bool, StoreError> {
    let mut head = Vec::with_capacity(MAGIC.len());
    match File::open(path) {
        Ok(f) => {
            f.take(MAGIC.len() as u64)
                .read_to_end(&mut head)
                .map_err(io_err("reading", path))?;
            Ok(head[..] == MAGIC[..])
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("opening", path)(e)),
    }
}

/// Converts the whole-graph file at `path`, if it is one, into a log store file.
pub(crate) fn convert_whole_graph_file(path: &Path, options: LogOptions) -> Result<(), StoreError> {
    if !starts_with_magic(path)? {
        return Ok(());
    }
    if options.read_only {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            detail: "it is a one-vat whole-graph file (GOBSFILE), which the log store converts \
            when it opens it: open it once for writing (not read-only) to convert it"
                .to_string(),
        });
    }
    // Held while converting, so no other handle opens the file half-way.
    let files = StoreFiles::open(path)?;
    let bytes = read_whole_graph_file(path).map_err(io_err("reading", path))?;
    let graph = decode_whole_graph_file(path, &bytes)?;
    let layout = one_vat_layout(graph, ONE_VAT, path)?;
    let encoded = EncodedGraph::from_graph(&layout);
    let kept = kept_path(path);
    fs::copy(path, &kept).map_err(io_err("keeping a copy of the one-vat file in", &kept))?;
    let (file, _) = write_snapshot_file(&files.tmp, &encoded)?;
    drop(file);
    fs::rename(&files.tmp, path).map_err(io_err("renaming into place", path))?;
    super::fsutil::sync_dir(&files.dir, &files.dir_path)?;
    warn_converted(path, "whole-graph file (GOBSFILE)", &kept);
    Ok(())
}

/// Converts `log`, if its `graph` is a lone vat's own (it has roots or has handed out ids;
/// a log store's graph has neither), into the log store's layout; returns the graph in
/// that layout.
pub(crate) fn convert_one_vat_log(log: &mut LogStore, graph: Graph) -> Result<Graph, StoreError> {
    if graph.roots.is_empty() && graph.next_id == 0 {
        return Ok(graph);
    }
    let path = log.path().to_path_buf();
    let layout = one_vat_layout(graph, ONE_VAT, &path)?;
    if log.options().read_only {
        return Ok(layout);
    }
    let kept = kept_path(&path);
    fs::copy(&path, &kept).map_err(io_err("keeping a copy of the one-vat log in", &kept))?;
    log.snapshot(&layout)?;
    warn_converted(&path, "log", &kept);
    Ok(layout)
}

fn warn_converted(path: &Path, what: &str, kept: &Path) {
    tracing::warn!(
        store = %path.display(),
        "converted the one-vat {what} {} to the log store's layout (its vat is named \"{ONE_VAT}\"); \
         the old file is kept in {} (remove it once you no longer need to run older code)",
        path.display(),
        kept.display()
    );
}

/// Reads the store file, after checking its magic (so that a path pointing at some large
/// unrelated file fails fast instead of reading it all).
fn read_whole_graph_file(path: &Path) -> io::Result<Vec<u8>> {
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
pub(crate) fn decode_whole_graph_file(path: &Path, bytes: &[u8]) -> Result<Graph, StoreError> {
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
                "not a gobs whole-graph file: it starts with {magic_seen:02x?}, not the magic `GOBSFILE`"
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
