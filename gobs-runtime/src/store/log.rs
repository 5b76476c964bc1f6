//! [`LogStore`]: an append-only log of checksummed frames, compacted now and then.
//!
//! The format and the recovery rules are documented on [`LogStore`].

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::encoded::{BIN32_LEN, EncodedGraph};
use super::frames::{ARRAY3, FRAME_HEADER, Fault, KIND_DELTA, MAGIC, TIME_LEN, now_ms, time_bytes};
use super::fsutil::{StoreFiles, StoreLock, io_err};
use super::group_commit::SyncTicket;
use super::sync::Syncer;
use super::{Durability, StoreError};
use crate::portrait::{Delta, Graph};

mod file;
mod recovery;

pub(crate) use file::write_snapshot_file;

/// How a [`LogStore`] behaves.
#[derive(Copy, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// On open, cut a damaged log back to its last whole frame before the damage, keeping
    /// the commits before it and dropping the frames from the damage on (whole ones
    /// included); the cut bytes are kept in a quarantine file beside the log
    /// ([`LogStore::quarantined`]). Off by default: a damaged log (a whole frame with a
    /// bad checksum, or damage followed by valid frames) is [`StoreError::Corrupt`] and
    /// left alone. A torn tail needs no salvage.
    pub salvage: bool,
    /// Never write the file: commits are applied to the graph in memory only and a torn
    /// tail stays where it is (a dry run: commands that only read, checking an upgrade).
    pub read_only: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            durability: Durability::EveryCommit,
            compact_ratio: 2.0,
            compact_min_bytes: 1 << 20,
            salvage: false,
            read_only: false,
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
    /// Bytes found after the last whole frame when the store was opened: a torn tail (cut
    /// before the first write) or, with [`LogOptions::salvage`], the damaged frames cut at
    /// open. Either way they are kept in [`LogStore::quarantined`].
    pub cut_bytes: u64,
}

/// A log of one graph that appends one checksummed frame per commit to a file: what the
/// log store ([`RegistryLogStore`](super::RegistryLogStore)) lays its vats out in. Handed
/// to [`PersistentVatBuilder::store`](crate::persist::PersistentVatBuilder::store), it is
/// opened as a log store of one vat.
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
/// A record is the MessagePack array `[kind, body, time]`: kind `2` with a `bin 32` body
/// holding the graph in the compact form of `store::compact` (a snapshot:
/// replaces everything; a few bytes per actor beside its arguments), kind `1` with a
/// [`Delta`] body (applied with [`Graph::apply`]); `time` is when it was committed,
/// milliseconds since 1970 as a `uint 64` (9 bytes). Delta bodies are encoded by
/// `rmp_serde` (structs as arrays). Snapshots written before the compact form are kind
/// `0` with a [`Graph`] body encoded by `rmp_serde`; they are read as they are, and the
/// next compaction writes the compact form. The first frame of a file is always a
/// snapshot. Logs written before frames carried times hold
/// `[kind, body]` records; they are read as they are (their commits' times are unknown),
/// and new frames appended to them carry times.
///
/// A commit appends one frame. When the file grows past the compaction bound (see
/// [`LogOptions`]), it is rewritten as one snapshot frame: `<path>.tmp`, fsync, rename,
/// directory fsync. The file is only ever created that way, so its header and first frame
/// are always whole.
///
/// # Recovery
///
/// On open the frames are replayed; opening never writes the file. A *torn tail* (an
/// incomplete last frame, or zeros, with no valid frame after it) is what a crash
/// mid-append leaves: the commit it held never returned (with
/// [`Durability::EveryCommit`], it was never acknowledged). The store opens without it,
/// with a warning saying where and how much, and cuts it before its first write, keeping
/// the cut bytes in a quarantine file beside the log (`<path>.cut-<offset>`).
///
/// Other damage is not a torn write: a whole last frame whose checksum fails (the disk
/// changed a frame that was written, perhaps an acknowledged commit), or damage followed
/// by valid frames (data lost in the middle). That is [`StoreError::Corrupt`], naming the
/// salvage, and the file is left alone; [`LogOptions::salvage`] keeps the commits before
/// the damage and quarantines the rest. A bad magic or a damaged first frame is always
/// `Corrupt`.
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
    poisoned: Option<(String, super::StoreErrorKind)>,
    compactions: u64,
    cut_bytes: u64,
    /// A torn tail found at open, cut (and quarantined) before the first write.
    pending_cut: Option<Fault>,
    /// Where the bytes cut from this log are kept (after a cut).
    quarantined: Option<PathBuf>,
    /// After a failed compaction, do not try again before the log reaches this size.
    compact_retry_at: u64,
    _lock: StoreLock,
}

impl LogStore {
    /// Opens (or prepares to create) the log at `path`, creating its directory if missing.
    ///
    /// Replays the log (see [Recovery](LogStore#recovery)): a torn tail is left out, with
    /// a warning, and cut before the first write; other damage gives
    /// [`StoreError::Corrupt`], file untouched (unless [`LogOptions::salvage`]).
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
            poisoned: None,
            compactions: 0,
            cut_bytes: 0,
            pending_cut: None,
            quarantined: None,
            compact_retry_at: 0,
            _lock: lock,
        };
        let file = match OpenOptions::new().read(true).write(true).open(&store.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(io_err("opening", &store.path)(e)),
        };
        store.graph = store.replay(&file)?;
        let mut file = file;
        file.seek(SeekFrom::Start(store.end))
            .map_err(io_err("seeking in", &store.path))?;
        store.syncer = Some(Syncer::new(
            options.durability,
            &file,
            &store.path,
            store.end,
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

    /// The graph as the log holds it (for stores layered on this one).
    pub(crate) fn encoded(&self) -> &EncodedGraph {
        &self.graph
    }

    /// The ids the graph holds in `range` (for stores layered on this one).
    pub(crate) fn ids_in(
        &self,
        range: std::ops::Range<crate::portrait::ActorId>,
    ) -> Vec<crate::portrait::ActorId> {
        self.graph.ids_in(range)
    }

    fn live_bytes(&self) -> u64 {
        MAGIC.len() as u64 + FRAME_HEADER + 2 + BIN32_LEN + self.graph.body_len() + TIME_LEN as u64
    }

    fn corrupt(&self, offset: u64, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            offset,
            detail,
        }
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        if let Some(e) = self.syncer.as_ref().and_then(Syncer::failure) {
            return Err(e);
        }
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
}

/// The log as one graph. A [`Store`](super::Store) lays its vats out in it: see
/// [`RegistryLogStore`](super::RegistryLogStore).
impl LogStore {
    /// Reads the graph; `None` for a log that was never written.
    pub fn load(&mut self) -> Result<Option<Graph>, StoreError> {
        if self.file.is_none() {
            return Ok(None);
        }
        Ok(Some(self.graph.to_graph()))
    }

    /// Appends `delta` as one frame (atomic; durable per the log's durability).
    pub fn commit(&mut self, delta: &Delta) -> Result<(), StoreError> {
        match self.commit_deferred(delta)? {
            Some(ticket) => ticket.wait(),
            None => Ok(()),
        }
    }

    /// Appends `delta` as one frame, like [`commit`](Self::commit), but returns before the
    /// fsync a [`Durability::EveryCommit`] log owes it: the commit is durable once the
    /// ticket is waited on (with any lock around the store released, so that commits in
    /// flight at once share fsyncs: see [`SyncTicket`]). `None`: nothing to wait for.
    pub fn commit_deferred(&mut self, delta: &Delta) -> Result<Option<SyncTicket>, StoreError> {
        self.check_poisoned()?;
        if self.options.read_only {
            self.graph.apply(delta);
            return Ok(None);
        }
        self.settle_tail()?;
        let encode_error = |detail: String| StoreError::Encode {
            path: self.path.clone(),
            what: "a delta",
            detail,
        };
        let (Some(file), Some(syncer)) = (&mut self.file, &self.syncer) else {
            // First commit: create the log, starting with a snapshot.
            let mut graph = EncodedGraph::default();
            graph.apply(delta);
            self.replace_file(&graph)?;
            self.compactions = 0;
            self.graph = graph;
            super::io_stats::count_commit();
            return Ok(None);
        };
        let mut frame = Vec::with_capacity(64);
        frame.extend_from_slice(&[0; FRAME_HEADER as usize]);
        frame.extend_from_slice(&[ARRAY3, KIND_DELTA]);
        rmp_serde::encode::write(&mut frame, delta).map_err(|e| encode_error(e.to_string()))?;
        frame.extend_from_slice(&time_bytes(now_ms()));
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
        self.graph.apply(delta);
        let ticket = syncer.after_write(self.end);
        let ticket = self.poison(ticket)?;
        super::io_stats::count_commit();
        self.maybe_compact();
        Ok(ticket)
    }

    /// Replaces the whole graph with `graph` atomically (a fresh file).
    pub fn snapshot(&mut self, graph: &Graph) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let enc = EncodedGraph::from_graph(graph);
        if !self.options.read_only {
            self.replace_file(&enc)?;
        }
        self.graph = enc;
        Ok(())
    }

    /// Makes every commit so far durable.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.check_poisoned()?;
        match &self.syncer {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }

    /// Where the log lives, for messages.
    pub fn describe(&self) -> String {
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
