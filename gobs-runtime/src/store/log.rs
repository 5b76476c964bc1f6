//! [`LogStore`]: an append-only log of checksummed frames, compacted now and then.
//!
//! The format and the recovery rules are documented on [`LogStore`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::encoded::{EncodedGraph, encode_delta};
use super::fsutil::{StoreFiles, StoreLock, io_err};
use super::sync::{Syncer, Target};
use super::{Durability, Store, StoreError};
use crate::portrait::{Delta, Graph};

const MAGIC: &[u8; 8] = b"GOBSLOG1";
const FRAME_HEADER: u64 = 8;
/// `[kind, body]`: array marker, kind, and at least one byte of body.
const MIN_PAYLOAD: u64 = 3;
const ARRAY2: u8 = 0x92;
const KIND_SNAPSHOT: u8 = 0;
const KIND_DELTA: u8 = 1;

/// How a [`LogStore`] behaves.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct LogOptions {
    /// When commits are fsynced (default: every commit).
    pub durability: Durability,
    /// Compact when the file is larger than `compact_ratio` × the size of a fresh snapshot
    /// of the graph ("live bytes")… (default 2.0; values below 1.0, and NaN, count as 1.0;
    /// infinity never compacts)
    pub compact_ratio: f64,
    /// …and larger than this many bytes, so that small stores do not compact all the time
    /// (default 1 MiB).
    pub compact_min_bytes: u64,
    /// On open, treat a damaged frame followed by valid frames like a torn tail: keep the
    /// commits before the damage and cut the file there, dropping the later (valid)
    /// frames. Off by default (such a file is [`StoreError::Corrupt`] and left alone);
    /// turn it on to recover a damaged store, after keeping a copy of it.
    pub salvage: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            durability: Durability::EveryCommit,
            compact_ratio: 2.0,
            compact_min_bytes: 1 << 20,
            salvage: false,
        }
    }
}

impl LogOptions {
    /// The defaults with another durability.
    pub fn with_durability(durability: Durability) -> Self {
        LogOptions {
            durability,
            ..LogOptions::default()
        }
    }

    /// The size past which the log is compacted, for `live` live bytes.
    fn compact_bound(&self, live: u64) -> u64 {
        let ratio = if self.compact_ratio >= 1.0 {
            self.compact_ratio
        } else {
            1.0
        };
        // `as` saturates: an infinite ratio gives u64::MAX (never compact).
        ((live as f64) * ratio).max(self.compact_min_bytes as f64) as u64
    }
}

/// Figures about a [`LogStore`], for tests, benchmarks and monitoring.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Bytes in the log file now (0 before the first commit).
    pub file_bytes: u64,
    /// Bytes a freshly compacted file would take (header and one snapshot frame).
    pub live_bytes: u64,
    /// Actors in the graph.
    pub actors: usize,
    /// Frames in the log file now.
    pub frames: u64,
    /// Compactions (and snapshots, which rewrite the file too) since open.
    pub compactions: u64,
    /// Bytes cut from a damaged tail when the store was opened.
    pub cut_bytes: u64,
}

/// A store that appends one checksummed frame per commit to a log file.
///
/// A commit costs the size of its delta, whatever the size of the graph (plus, now and
/// then, a compaction that rewrites the graph in one snapshot frame: its cost, spread over
/// the commits since the last one, is at most about `1 / (compact_ratio - 1)` times their
/// bytes). The store keeps the graph in memory, encoded, to write snapshots and to count
/// live bytes.
///
/// # File format
///
/// The file starts with the magic `GOBSLOG1` (8 bytes; the `1` is the format version),
/// followed by frames:
///
/// | bytes | content |
/// | --- | --- |
/// | 0..4 | payload length `n`, `u32` little-endian (at least 3) |
/// | 4..8 | CRC-32 (IEEE) of the payload, `u32` little-endian |
/// | 8..8+n | payload: a record, MessagePack |
///
/// A record is the MessagePack array `[kind, body]`: kind `0` with a [`Graph`] body (a
/// snapshot: replaces everything), kind `1` with a [`Delta`] body (applied with
/// [`Graph::apply`]). Bodies are encoded by `rmp_serde` (structs as arrays). The first
/// frame of a file is always a snapshot.
///
/// A commit appends one frame. When the file grows past the compaction bound (see
/// [`LogOptions`]), it is rewritten as one snapshot frame: `<path>.tmp`, fsync, rename,
/// directory fsync. The file is only ever created that way, so its header and first frame
/// are always whole.
///
/// # Recovery
///
/// On open the frames are replayed. A damaged tail (an incomplete frame, a bad length or
/// checksum, with no valid frame after it) is what a crash mid-append leaves: the file is
/// cut back to the last whole frame, with a warning saying where and how much. A damaged
/// frame followed by valid frames is not a torn write (the disk lost data in the middle):
/// that is [`StoreError::Corrupt`] and the file is left alone, unless
/// [`LogOptions::salvage`] asks to keep the commits before the damage. A bad magic or a
/// damaged first frame is always `Corrupt`.
///
/// The store holds `<path>.lock` while open (see [`StoreError::Locked`]).
#[derive(Debug)]
pub struct LogStore {
    path: PathBuf,
    tmp: PathBuf,
    dir: File,
    dir_path: PathBuf,
    options: LogOptions,
    /// The log, positioned at `end`; `None` before the first commit.
    file: Option<File>,
    /// Its syncer (made anew with each file).
    syncer: Option<Syncer>,
    /// Length of the log: the end of its last whole frame.
    end: u64,
    frames: u64,
    graph: EncodedGraph,
    /// The graph replayed at open, handed out by the first `load`.
    loaded: Option<Graph>,
    poisoned: Option<(String, super::StoreErrorKind)>,
    compactions: u64,
    cut_bytes: u64,
    /// After a failed compaction, do not try again before the log reaches this size.
    compact_retry_at: u64,
    _lock: StoreLock,
}

/// One frame read back, or why there is none at this offset.
enum Frame {
    Whole { payload_len: u64 },
    Damaged(String),
}

/// A decoded record.
enum Record {
    Snapshot(Graph),
    Delta(Delta),
}

impl LogStore {
    /// Opens (or prepares to create) the log at `path`, creating its directory if missing.
    ///
    /// Replays the log (see [Recovery](LogStore#recovery)): a torn tail is
    /// cut off with a warning; other damage gives [`StoreError::Corrupt`], file untouched.
    /// Another open handle on the same store gives [`StoreError::Locked`].
    pub fn open(path: impl AsRef<Path>, options: LogOptions) -> Result<Self, StoreError> {
        let StoreFiles {
            path,
            dir,
            dir_path,
            lock,
            tmp,
        } = StoreFiles::open(path.as_ref())?;
        let mut store = LogStore {
            path,
            tmp,
            dir,
            dir_path,
            options,
            file: None,
            syncer: None,
            end: 0,
            frames: 0,
            graph: EncodedGraph::default(),
            loaded: None,
            poisoned: None,
            compactions: 0,
            cut_bytes: 0,
            compact_retry_at: 0,
            _lock: lock,
        };
        let file = match OpenOptions::new().read(true).write(true).open(&store.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(io_err("opening", &store.path)(e)),
        };
        let graph = store.replay(&file)?;
        store.graph = EncodedGraph::from_graph(&graph).map_err(|detail| StoreError::Encode {
            path: store.path.clone(),
            what: "the graph",
            detail,
        })?;
        store.loaded = Some(graph);
        let mut file = file;
        file.seek(SeekFrom::Start(store.end))
            .map_err(io_err("seeking in", &store.path))?;
        store.syncer = Some(Syncer::new(
            options.durability,
            Target::Data,
            &file,
            &store.path,
        )?);
        store.file = Some(file);
        Ok(store)
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options this store was opened with.
    pub fn options(&self) -> LogOptions {
        self.options
    }

    /// Figures about the log now.
    pub fn stats(&self) -> LogStats {
        LogStats {
            file_bytes: self.end,
            live_bytes: self.live_bytes(),
            actors: self.graph.len(),
            frames: self.frames,
            compactions: self.compactions,
            cut_bytes: self.cut_bytes,
        }
    }

    /// The ids the graph holds in `range` (for stores layered on this one).
    pub(crate) fn ids_in(
        &self,
        range: std::ops::Range<crate::portrait::ActorId>,
    ) -> Vec<crate::portrait::ActorId> {
        self.graph.ids_in(range)
    }

    fn live_bytes(&self) -> u64 {
        let body = self
            .graph
            .body_len()
            .unwrap_or(16 + self.graph.entry_bytes());
        MAGIC.len() as u64 + FRAME_HEADER + 2 + body
    }

    fn corrupt(&self, offset: u64, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    /// Replays the log; sets `end` and `frames`, cuts a torn tail.
    fn replay(&mut self, file: &File) -> Result<Graph, StoreError> {
        let len = file
            .metadata()
            .map_err(io_err("reading metadata of", &self.path))?
            .len();
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 8];
        let head = usize::try_from(len).unwrap_or(usize::MAX).min(MAGIC.len());
        r.read_exact(&mut magic[..head])
            .map_err(io_err("reading", &self.path))?;
        if magic[..head] != MAGIC[..head] || head < MAGIC.len() {
            return Err(self.corrupt(
                0,
                format!(
                    "not a gobs log store: it starts with {:02x?}, not the magic `GOBSLOG1`",
                    &magic[..head]
                ),
            ));
        }
        let mut pos = MAGIC.len() as u64;
        let mut graph: Option<Graph> = None;
        let mut payload = Vec::new();
        let damage = loop {
            if pos == len {
                break None;
            }
            let payload_len = match read_frame(&mut r, pos, len, &mut payload)
                .map_err(io_err("reading", &self.path))?
            {
                Frame::Whole { payload_len } => payload_len,
                Frame::Damaged(reason) => break Some(reason),
            };
            let record = decode_record(&payload).map_err(|e| {
                self.corrupt(
                    pos,
                    format!("a frame with a valid checksum does not decode: {e}"),
                )
            })?;
            match (record, &mut graph) {
                (Record::Snapshot(g), _) => graph = Some(g),
                (Record::Delta(d), Some(g)) => g.apply(&d),
                (Record::Delta(_), None) => {
                    return Err(self.corrupt(
                        pos,
                        "the first frame is a delta, not a snapshot".to_string(),
                    ));
                }
            }
            pos += FRAME_HEADER + payload_len;
            self.frames += 1;
        };
        drop(r);
        let Some(graph) = graph else {
            let why = damage.unwrap_or_else(|| "the file has no frame".to_string());
            return Err(self.corrupt(
                pos,
                format!("the first frame (the snapshot every log starts with) is damaged: {why}"),
            ));
        };
        if let Some(reason) = damage {
            if let Some(next) = self.find_valid_frame(file, pos + 1, len)?
                && !self.options.salvage
            {
                return Err(self.corrupt(
                    pos,
                    format!(
                        "{reason}, yet a valid frame follows at byte {next}: this is damage in \
                         the middle of the log, not a torn write. To keep the {} frames before \
                         byte {pos} and drop everything after, open with `LogOptions {{ salvage: \
                         true, .. }}` (after keeping a copy of the file)",
                        self.frames
                    ),
                ));
            }
            let cut = len - pos;
            file.set_len(pos)
                .and_then(|()| file.sync_data())
                .map_err(io_err("cutting the damaged tail of", &self.path))?;
            tracing::warn!(
                path = %self.path.display(),
                offset = pos,
                cut_bytes = cut,
                frames_kept = self.frames,
                "store log {}: cut {cut} bytes of damaged tail at byte {pos} ({reason}); kept the {} frames before it",
                self.path.display(),
                self.frames,
            );
            self.cut_bytes = cut;
        }
        self.end = pos;
        Ok(graph)
    }

    /// The offset of the first valid frame at or after `from`, if any.
    fn find_valid_frame(
        &self,
        file: &File,
        from: u64,
        len: u64,
    ) -> Result<Option<u64>, StoreError> {
        let mut tail = Vec::new();
        let mut f = file;
        f.seek(SeekFrom::Start(from))
            .and_then(|_| f.take(len.saturating_sub(from)).read_to_end(&mut tail))
            .map_err(io_err("reading", &self.path))?;
        let mut at = 0usize;
        while at + (FRAME_HEADER + MIN_PAYLOAD) as usize <= tail.len() {
            let plen = u32_le(&tail[at..]) as usize;
            let start = at + FRAME_HEADER as usize;
            if plen >= MIN_PAYLOAD as usize
                && plen <= tail.len() - start
                && tail[start] == ARRAY2
                && (tail[start + 1] == KIND_SNAPSHOT || tail[start + 1] == KIND_DELTA)
                && crc32fast::hash(&tail[start..start + plen]) == u32_le(&tail[at + 4..])
            {
                return Ok(Some(from + at as u64));
            }
            at += 1;
        }
        Ok(None)
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

    fn poison<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            self.poisoned = Some((e.to_string(), e.kind()));
        }
        result
    }

    /// Replaces the log with a fresh file holding `graph` as one snapshot frame.
    ///
    /// A failure before the rename leaves the old log in use (and the store usable); a
    /// failure after it poisons the store.
    fn replace_file(&mut self, graph: &EncodedGraph) -> Result<(), StoreError> {
        let written = write_snapshot_file(&self.tmp, graph).and_then(|(file, end)| {
            fs::rename(&self.tmp, &self.path).map_err(io_err("renaming into place", &self.path))?;
            Ok((file, end))
        });
        let (file, end) = match written {
            Ok(x) => x,
            Err(e) => {
                let _ = fs::remove_file(&self.tmp);
                return Err(e);
            }
        };
        // The new file is in place: from here on, a failure leaves this handle unsure.
        let syncer = Syncer::new(self.options.durability, Target::Data, &file, &self.path);
        let syncer = self.poison(syncer)?;
        self.file = Some(file);
        self.syncer = Some(syncer);
        self.end = end;
        self.frames = 1;
        self.compactions += 1;
        self.compact_retry_at = 0;
        let synced = super::fsutil::sync_dir(&self.dir, &self.dir_path);
        self.poison(synced)
    }

    /// Compacts when the log has grown past its bound. A commit is already in the log when
    /// this runs, so a failure is only logged.
    fn maybe_compact(&mut self) {
        let live = self.live_bytes();
        if self.end <= self.options.compact_bound(live) || self.end < self.compact_retry_at {
            return;
        }
        let graph = std::mem::take(&mut self.graph);
        let before = self.end;
        let result = self.replace_file(&graph);
        self.graph = graph;
        match result {
            Ok(()) => tracing::debug!(
                path = %self.path.display(),
                before,
                after = self.end,
                "compacted store log"
            ),
            Err(e) => {
                self.compact_retry_at = before + live.max(self.options.compact_min_bytes);
                tracing::warn!(error = %e, "compacting a store log failed; it keeps growing until a later compaction works");
            }
        }
    }
}

fn u32_le(b: &[u8]) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[..4]);
    u32::from_le_bytes(x)
}

/// Reads the frame at `pos` into `payload`, or says why there is no whole frame there.
fn read_frame(r: &mut impl Read, pos: u64, len: u64, payload: &mut Vec<u8>) -> io::Result<Frame> {
    let left = len - pos;
    if left < FRAME_HEADER {
        return Ok(Frame::Damaged(format!(
            "incomplete frame header ({left} of {FRAME_HEADER} bytes)"
        )));
    }
    let mut header = [0u8; FRAME_HEADER as usize];
    r.read_exact(&mut header)?;
    let payload_len = u64::from(u32_le(&header));
    let crc = u32_le(&header[4..]);
    if payload_len < MIN_PAYLOAD {
        return Ok(Frame::Damaged(format!(
            "frame length {payload_len} is below the minimum {MIN_PAYLOAD}"
        )));
    }
    if payload_len > left - FRAME_HEADER {
        return Ok(Frame::Damaged(format!(
            "incomplete frame: its header announces {payload_len} bytes, {} remain",
            left - FRAME_HEADER
        )));
    }
    // Bounded by the file's size, checked above.
    payload.resize(payload_len as usize, 0);
    r.read_exact(payload)?;
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Ok(Frame::Damaged(format!(
            "frame checksum mismatch (stored {crc:08x}, computed {actual:08x})"
        )));
    }
    Ok(Frame::Whole { payload_len })
}

fn decode_record(payload: &[u8]) -> Result<Record, String> {
    if payload.len() < MIN_PAYLOAD as usize || payload[0] != ARRAY2 {
        return Err("a record is a MessagePack array [kind, body]".to_string());
    }
    let body = &payload[2..];
    let mut de = rmp_serde::Deserializer::new(Cursor::new(body));
    de.set_max_depth(super::MAX_DECODE_DEPTH);
    let record = match payload[1] {
        KIND_SNAPSHOT => {
            Record::Snapshot(serde::Deserialize::deserialize(&mut de).map_err(|e| e.to_string())?)
        }
        KIND_DELTA => {
            Record::Delta(serde::Deserialize::deserialize(&mut de).map_err(|e| e.to_string())?)
        }
        other => return Err(format!("unknown record kind {other}")),
    };
    if de.position() != body.len() as u64 {
        return Err("unexpected bytes after the record".to_string());
    }
    Ok(record)
}

/// Writes a fresh log holding `graph` to `tmp` and fsyncs it; returns the file (positioned
/// at its end) and its length.
fn write_snapshot_file(tmp: &Path, graph: &EncodedGraph) -> Result<(File, u64), StoreError> {
    let body_len = graph.body_len().map_err(io_err("encoding", tmp))?;
    let payload_len = u32::try_from(2 + body_len).map_err(|_| StoreError::Encode {
        path: tmp.to_path_buf(),
        what: "the graph",
        detail: format!(
            "a snapshot of {body_len} bytes exceeds the 4 GiB frame limit of the log format"
        ),
    })?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err("creating", tmp))?;
    let mut crc = crc32fast::Hasher::new();
    let written = (|| -> io::Result<u64> {
        let mut w = BufWriter::with_capacity(1 << 16, &mut file);
        w.write_all(MAGIC)?;
        w.write_all(&payload_len.to_le_bytes())?;
        w.write_all(&[0; 4])?; // the CRC, written once known
        let tag = [ARRAY2, KIND_SNAPSHOT];
        w.write_all(&tag)?;
        crc.update(&tag);
        graph.write_body(&mut w, &mut crc)?;
        w.flush()?;
        drop(w);
        file.seek(SeekFrom::Start(MAGIC.len() as u64 + 4))?;
        file.write_all(&crc.finalize().to_le_bytes())?;
        file.seek(SeekFrom::End(0))
    })();
    let end = written.map_err(io_err("writing", tmp))?;
    super::fault::sync_data(&file, tmp).map_err(io_err("syncing", tmp))?;
    Ok((file, end))
}

impl Store for LogStore {
    fn load(&mut self) -> Result<Option<Graph>, StoreError> {
        if let Some(g) = self.loaded.take() {
            return Ok(Some(g));
        }
        if self.file.is_none() {
            return Ok(None);
        }
        self.graph
            .to_graph()
            .map(Some)
            .map_err(|detail| StoreError::Corrupt {
                path: self.path.clone(),
                offset: 0,
                detail: format!("the graph held in memory does not decode: {detail}"),
            })
    }

    fn commit(&mut self, delta: &Delta) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let encode_error = |detail: String| StoreError::Encode {
            path: self.path.clone(),
            what: "a delta",
            detail,
        };
        let enc = encode_delta(delta).map_err(encode_error)?;
        let (Some(file), Some(syncer)) = (&mut self.file, &self.syncer) else {
            // First commit: create the log, starting with a snapshot.
            let mut graph = EncodedGraph::default();
            graph.apply(enc);
            self.replace_file(&graph)?;
            self.compactions = 0;
            self.graph = graph;
            self.loaded = None;
            return Ok(());
        };
        let mut frame = Vec::with_capacity(64);
        frame.extend_from_slice(&[0; FRAME_HEADER as usize]);
        frame.extend_from_slice(&[ARRAY2, KIND_DELTA]);
        rmp_serde::encode::write(&mut frame, delta).map_err(|e| encode_error(e.to_string()))?;
        let payload_len = u32::try_from(frame.len() - FRAME_HEADER as usize).map_err(|_| {
            encode_error(format!(
                "a delta of {} bytes exceeds the 4 GiB frame limit of the log format",
                frame.len()
            ))
        })?;
        let crc = crc32fast::hash(&frame[FRAME_HEADER as usize..]);
        frame[..4].copy_from_slice(&payload_len.to_le_bytes());
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        if let Err(e) = super::fault::write_all(file, &frame, &self.path) {
            // Take back a partial append, so the log stays whole.
            let end = self.end;
            let undone = file
                .set_len(end)
                .and_then(|()| file.seek(SeekFrom::Start(end)));
            let err = io_err("appending to", &self.path)(e);
            if undone.is_err() {
                self.poisoned = Some((err.to_string(), err.kind()));
            }
            return Err(err);
        }
        self.end += frame.len() as u64;
        self.frames += 1;
        self.loaded = None;
        self.graph.apply(enc);
        let synced = syncer.after_commit(file, &self.path);
        self.poison(synced)?;
        self.maybe_compact();
        Ok(())
    }

    fn snapshot(&mut self, graph: &Graph) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let enc = EncodedGraph::from_graph(graph).map_err(|detail| StoreError::Encode {
            path: self.path.clone(),
            what: "the graph",
            detail,
        })?;
        self.replace_file(&enc)?;
        self.graph = enc;
        self.loaded = None;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.check_poisoned()?;
        match &self.syncer {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        if self.poisoned.is_none()
            && let Some(s) = &self.syncer
            && s.has_unsynced()
            && let Err(e) = s.flush()
        {
            tracing::error!(error = %e, "closing a store: its last commits may not be durable");
        }
    }
}
