//! The frames of a log store file: reading them back, and telling what follows the last
//! whole one. [`LogStore`](super::LogStore) documents the format; this file reads it, for
//! the store's own replay and for readers that do not open the store (inspection).

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;

use super::StoreError;
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
enum Frame {
    Whole {
        payload_len: u64,
    },
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
pub(crate) struct Replayed {
    pub graph: Graph,
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

/// Replays the log in `file` (of `len` bytes); `on_frame` sees each whole frame before it
/// is applied. Never writes.
pub(crate) fn replay(
    file: &File,
    len: u64,
    path: &Path,
    on_frame: &mut dyn FnMut(&Seen<'_>),
) -> Result<Replayed, StoreError> {
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    let head = usize::try_from(len).unwrap_or(usize::MAX).min(MAGIC.len());
    r.read_exact(&mut magic[..head])
        .map_err(io_err("reading", path))?;
    if magic[..head] != MAGIC[..head] || head < MAGIC.len() {
        return Err(corrupt(
            path,
            0,
            format!(
                "not a gobs log store: it starts with {:02x?}, not the magic `GOBSLOG1`",
                &magic[..head]
            ),
        ));
    }
    let mut pos = MAGIC.len() as u64;
    let mut graph: Option<Graph> = None;
    let mut frames = 0;
    let mut payload = Vec::new();
    let damage = loop {
        if pos == len {
            break None;
        }
        let payload_len =
            match read_frame(&mut r, pos, len, &mut payload).map_err(io_err("reading", path))? {
                Frame::Whole { payload_len } => payload_len,
                Frame::Incomplete(reason) => break Some((reason, true)),
                Frame::Damaged(reason) => break Some((reason, false)),
            };
        let (record, time) = decode_record(&payload).map_err(|e| {
            corrupt(
                path,
                pos,
                format!("a frame with a valid checksum does not decode: {e}"),
            )
        })?;
        on_frame(&Seen {
            offset: pos,
            bytes: FRAME_HEADER + payload_len,
            record: &record,
            time_ms: time,
        });
        match (record, &mut graph) {
            (Record::Snapshot(g), _) => graph = Some(g),
            (Record::Delta(d), Some(g)) => g.apply(&d),
            (Record::Delta(_), None) => {
                return Err(corrupt(
                    path,
                    pos,
                    "the first frame is a delta, not a snapshot".to_string(),
                ));
            }
        }
        pos += FRAME_HEADER + payload_len;
        frames += 1;
    };
    drop(r);
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
            let tail = read_tail(file, pos, len).map_err(io_err("reading", path))?;
            let next_valid = find_valid_frame(&tail, 1).map(|at| pos + at as u64);
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

/// Reads the frame at `pos` into `payload`, or says why there is no whole frame there.
fn read_frame(r: &mut impl Read, pos: u64, len: u64, payload: &mut Vec<u8>) -> io::Result<Frame> {
    let left = len - pos;
    if left < FRAME_HEADER {
        return Ok(Frame::Incomplete(format!(
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
        return Ok(Frame::Incomplete(format!(
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
            && (tail[start + 1] == KIND_SNAPSHOT || tail[start + 1] == KIND_DELTA)
            && crc32fast::hash(&tail[start..start + plen]) == u32_le(&tail[at + 4..])
        {
            return Some(at);
        }
        at += 1;
    }
    None
}
