//! The frames of a log store file: reading them back, and telling what follows the last
//! whole one. [`LogStore`](super::LogStore) documents the format; this file reads it, for
//! the store's own replay and for readers that do not open the store (inspection).

use std::fs::File;
use std::io::{self, Cursor};
use std::path::Path;
use std::sync::Arc;

use super::StoreError;
use super::encoded::EncodedGraph;
use super::fsutil::io_err;
use crate::portrait::{Delta, Graph};

pub(crate) const MAGIC: &[u8; 8] = b"GOBSLOG1";
pub(crate) const FRAME_HEADER: u64 = 8;
/// `[kind, body]`: array marker, kind, and at least one byte of body.
pub(crate) const MIN_PAYLOAD: u64 = 3;
/// `[kind, body]`: a record written before frames carried their commit time.
pub(crate) const ARRAY2: u8 = 0x92;
/// `[kind, body, time]`: a record with its commit time.
pub(crate) const ARRAY3: u8 = 0x93;
pub(crate) const KIND_SNAPSHOT: u8 = 0;
pub(crate) const KIND_DELTA: u8 = 1;
/// A snapshot whose body is a `bin 32` holding a compact body (see
/// [`compact`](super::compact)).
pub(crate) const KIND_COMPACT: u8 = 2;

/// A commit time as a record's last element: MessagePack `uint 64` (milliseconds since
/// 1970), always 9 bytes, so a snapshot's frame length is known before its body is written.
pub(crate) fn time_bytes(ms: u64) -> [u8; TIME_LEN] {
    let mut b = [0xcf; TIME_LEN];
    b[1..].copy_from_slice(&ms.to_be_bytes());
    b
}

/// The length of [`time_bytes`].
pub(crate) const TIME_LEN: usize = 9;

/// Now, in milliseconds since 1970 (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A decoded record.
#[derive(Debug)]
pub(crate) enum Record {
    Snapshot(Graph),
    Delta(Delta),
}

/// One frame read back, or why there is none at this offset.
enum Frame<'a> {
    /// Its payload.
    Whole(&'a [u8]),
    /// The file ends inside this frame: what a crash mid-append leaves.
    Incomplete(String),
    /// The frame is all there, but its length or checksum is wrong.
    Damaged(String),
}

/// What follows the last whole frame of a log, when something does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    /// Where the bad bytes start (the end of the last whole frame).
    pub offset: u64,
    /// How many bytes follow, to the end of the file.
    pub bytes: u64,
    /// What is wrong with the first of them.
    pub reason: String,
    /// An incomplete last frame (or zeros a file system left), and nothing valid after it:
    /// a write a crash interrupted, never acknowledged when every commit is fsynced.
    pub torn: bool,
    /// A valid frame found after the damage: the log was damaged in the middle.
    pub next_valid: Option<u64>,
}

/// A log read back from its start.
#[derive(Debug)]
pub(crate) struct Replayed<G> {
    pub graph: G,
    /// The end of the last whole frame.
    pub end: u64,
    pub frames: u64,
    pub fault: Option<Fault>,
}

fn corrupt(path: &Path, offset: u64, detail: String) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        detail,
    }
}

/// A whole frame, as [`replay`] shows it.
pub(crate) struct Seen<'a> {
    /// Where it starts.
    pub offset: u64,
    /// Its length, header included.
    pub bytes: u64,
    pub record: &'a Record,
    /// Its commit time (ms since 1970), unless it was written before frames carried one.
    pub time_ms: Option<u64>,
}

/// Replays the log in `file` (of `len` bytes) into a [`Graph`]; `on_frame` sees each
/// whole frame before it is applied. Never writes. For readers of a log's history.
pub(crate) fn replay(
    file: &File,
    len: u64,
    path: &Path,
    on_frame: &mut dyn FnMut(&Seen<'_>),
) -> Result<Replayed<Graph>, StoreError> {
    let bytes = read_all(file, len, path)?;
    let mut graph: Option<Graph> = None;
    let walked = walk(&bytes, path, &mut |pos, payload| {
        let (record, time) = decode_record(payload).map_err(|e| undecodable(path, pos, e))?;
        on_frame(&Seen {
            offset: pos,
            bytes: FRAME_HEADER + payload.len() as u64,
            record: &record,
            time_ms: time,
        });
        match (record, &mut graph) {
            (Record::Snapshot(g), _) => graph = Some(g),
            (Record::Delta(d), Some(g)) => g.apply(&d),
            (Record::Delta(_), None) => return Err(delta_first(path, pos)),
        }
        Ok(())
    })?;
    walked.finish(graph, &bytes, path)
}

/// Replays the log in `file` (of `len` bytes) into an [`EncodedGraph`], in one pass over
/// the file's bytes: a compact snapshot is read straight into it. Never writes.
pub(crate) fn replay_encoded(
    file: &File,
    len: u64,
    path: &Path,
) -> Result<Replayed<EncodedGraph>, StoreError> {
    // Kept by the graph, whose actors' arguments stay in it.
    let bytes = Arc::new(read_all(file, len, path)?);
    let mut graph: Option<EncodedGraph> = None;
    let walked = walk(&bytes, path, &mut |pos, payload| {
        if let Some(body) = compact_body(payload).map_err(|e| undecodable(path, pos, e))? {
            // `body` is a slice of `bytes`: where it starts in them.
            let start = body.as_ptr().addr() - bytes.as_ptr().addr();
            let read = EncodedGraph::from_loaded(bytes.clone(), start..start + body.len());
            graph = Some(read.map_err(|e| undecodable(path, pos, e))?);
            return Ok(());
        }
        let (record, _) = decode_record(payload).map_err(|e| undecodable(path, pos, e))?;
        match (record, &mut graph) {
            (Record::Snapshot(g), _) => graph = Some(EncodedGraph::from_graph(&g)),
            (Record::Delta(d), Some(g)) => g.apply(&d),
            (Record::Delta(_), None) => return Err(delta_first(path, pos)),
        }
        Ok(())
    })?;
    walked.finish(graph, &bytes, path)
}

fn undecodable(path: &Path, pos: u64, e: String) -> StoreError {
    corrupt(
        path,
        pos,
        format!("a frame with a valid checksum does not decode: {e}"),
    )
}

fn delta_first(path: &Path, pos: u64) -> StoreError {
    corrupt(
        path,
        pos,
        "the first frame is a delta, not a snapshot".to_string(),
    )
}

/// The whole file, read at once: a log is replayed from memory.
fn read_all(file: &File, len: u64, path: &Path) -> Result<Vec<u8>, StoreError> {
    read_tail(file, 0, len).map_err(io_err("reading", path))
}

/// Where a walk over a log's frames stopped.
struct Walked {
    /// The end of the last whole frame.
    end: u64,
    frames: u64,
    /// What is wrong after it, and whether the frame there is incomplete.
    damage: Option<(String, bool)>,
}

/// What [`walk`] hands each whole frame to: its offset and payload.
type OnPayload<'a> = dyn FnMut(u64, &[u8]) -> Result<(), StoreError> + 'a;

/// Hands each whole frame's payload of the log `bytes` to `on_payload`, in order.
fn walk(bytes: &[u8], path: &Path, on_payload: &mut OnPayload<'_>) -> Result<Walked, StoreError> {
    let head = bytes.len().min(MAGIC.len());
    if bytes[..head] != MAGIC[..head] || head < MAGIC.len() {
        return Err(corrupt(
            path,
            0,
            format!(
                "not a gobs log store: it starts with {:02x?}, not the magic `GOBSLOG1`",
                &bytes[..head]
            ),
        ));
    }
    let len = bytes.len() as u64;
    let mut pos = MAGIC.len() as u64;
    let mut frames = 0;
    let damage = loop {
        if pos == len {
            break None;
        }
        // `pos` is within `bytes`, whose length is a usize.
        let payload = match read_frame(&bytes[pos as usize..]) {
            Frame::Whole(payload) => payload,
            Frame::Incomplete(reason) => break Some((reason, true)),
            Frame::Damaged(reason) => break Some((reason, false)),
        };
        on_payload(pos, payload)?;
        pos += FRAME_HEADER + payload.len() as u64;
        frames += 1;
    };
    Ok(Walked {
        end: pos,
        frames,
        damage,
    })
}

impl Walked {
    /// The replay's result, with what follows the last whole frame.
    fn finish<G>(
        self,
        graph: Option<G>,
        bytes: &[u8],
        path: &Path,
    ) -> Result<Replayed<G>, StoreError> {
        let Walked {
            end: pos,
            frames,
            damage,
        } = self;
        let len = bytes.len() as u64;
        let Some(graph) = graph else {
            let why = damage.map_or_else(|| "the file has no frame".to_string(), |(r, _)| r);
            return Err(corrupt(
                path,
                pos,
                format!("the first frame (the snapshot every log starts with) is damaged: {why}"),
            ));
        };
        let fault = match damage {
            None => None,
            Some((reason, incomplete)) => {
                let tail = &bytes[pos as usize..];
                let next_valid = find_valid_frame(tail, 1).map(|at| pos + at as u64);
                let zeros = tail.iter().all(|b| *b == 0);
                Some(Fault {
                    offset: pos,
                    bytes: len - pos,
                    reason,
                    torn: next_valid.is_none() && (incomplete || zeros),
                    next_valid,
                })
            }
        };
        Ok(Replayed {
            graph,
            end: pos,
            frames,
            fault,
        })
    }
}

/// The bytes of `file` from `from` to `len`.
pub(crate) fn read_tail(file: &File, from: u64, len: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut tail = vec![0u8; usize::try_from(len.saturating_sub(from)).unwrap_or(0)];
    file.read_exact_at(&mut tail, from)?;
    Ok(tail)
}

fn u32_le(b: &[u8]) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[..4]);
    u32::from_le_bytes(x)
}

/// The whole frame at the start of `bytes`, or why there is none.
fn read_frame(bytes: &[u8]) -> Frame<'_> {
    let left = bytes.len() as u64;
    if left < FRAME_HEADER {
        return Frame::Incomplete(format!(
            "incomplete frame header ({left} of {FRAME_HEADER} bytes)"
        ));
    }
    let payload_len = u64::from(u32_le(bytes));
    let crc = u32_le(&bytes[4..]);
    if payload_len < MIN_PAYLOAD {
        return Frame::Damaged(format!(
            "frame length {payload_len} is below the minimum {MIN_PAYLOAD}"
        ));
    }
    if payload_len > left - FRAME_HEADER {
        return Frame::Incomplete(format!(
            "incomplete frame: its header announces {payload_len} bytes, {} remain",
            left - FRAME_HEADER
        ));
    }
    // Bounded by the bytes' length, checked above.
    let payload = &bytes[FRAME_HEADER as usize..(FRAME_HEADER + payload_len) as usize];
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Frame::Damaged(format!(
            "frame checksum mismatch (stored {crc:08x}, computed {actual:08x})"
        ));
    }
    Frame::Whole(payload)
}

/// The body of a compact snapshot record (`[2, bin 32, time]`), `None` for a record of
/// another kind.
pub(crate) fn compact_body(payload: &[u8]) -> Result<Option<&[u8]>, String> {
    match payload {
        [ARRAY3, KIND_COMPACT, 0xc6, rest @ ..] if rest.len() >= 4 => {
            let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let rest = &rest[4..];
            if rest.len() != n + TIME_LEN || rest[n] != 0xcf {
                return Err(format!(
                    "a compact snapshot of {n} bytes is not followed by its commit time"
                ));
            }
            Ok(Some(&rest[..n]))
        }
        [ARRAY3, KIND_COMPACT, ..] => Err("a compact snapshot lacks its length".to_string()),
        _ => Ok(None),
    }
}

/// The commit time of a compact snapshot record.
fn compact_time(payload: &[u8]) -> Option<u64> {
    let t = payload.get(payload.len().checked_sub(TIME_LEN - 1)?..)?;
    Some(u64::from_be_bytes(t.try_into().ok()?))
}

/// Decodes a frame's payload: its record, and its commit time unless it was written
/// before frames carried one.
pub(crate) fn decode_record(payload: &[u8]) -> Result<(Record, Option<u64>), String> {
    let timed = match payload.first() {
        Some(&ARRAY2) => false,
        Some(&ARRAY3) => true,
        _ => return Err("a record is a MessagePack array [kind, body, time]".to_string()),
    };
    if payload.len() < MIN_PAYLOAD as usize {
        return Err("a record is a MessagePack array [kind, body, time]".to_string());
    }
    if let Some(body) = compact_body(payload)? {
        let graph = EncodedGraph::from_compact(body)?.to_graph();
        return Ok((Record::Snapshot(graph), compact_time(payload)));
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
    let time = if timed {
        let ms: u64 = serde::Deserialize::deserialize(&mut de)
            .map_err(|e| format!("the record's commit time does not decode: {e}"))?;
        Some(ms)
    } else {
        None
    };
    if de.position() != body.len() as u64 {
        return Err("unexpected bytes after the record".to_string());
    }
    Ok((record, time))
}

/// The offset in `tail` of the first valid frame at or after `from`, if any.
fn find_valid_frame(tail: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + (FRAME_HEADER + MIN_PAYLOAD) as usize <= tail.len() {
        let plen = u32_le(&tail[at..]) as usize;
        let start = at + FRAME_HEADER as usize;
        if plen >= MIN_PAYLOAD as usize
            && plen <= tail.len() - start
            && (tail[start] == ARRAY2 || tail[start] == ARRAY3)
            && matches!(tail[start + 1], KIND_SNAPSHOT | KIND_DELTA | KIND_COMPACT)
            && crc32fast::hash(&tail[start..start + plen]) == u32_le(&tail[at + 4..])
        {
            return Some(at);
        }
        at += 1;
    }
    None
}
