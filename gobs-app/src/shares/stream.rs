//! Streams through a share: a `run` whose output comes as it is made and whose standard
//! input is passed on, and `put-file`/`get-file` of any size (their archive is the stream).
//!
//! The holder of a grant opens a stream ([`Grant::open`](super::saved::Grant)) with the
//! same request the control socket takes, streamed; it gets a number that names the stream
//! within that grant, then pulls output in batches (`output`, one call at a time: each
//! answers what was made since, up to [`BATCH`]), pushes input (`input`, answered once the
//! machine's side took it: a slow command slows its sender), ends it (`input_end`) and
//! takes the answer (`finish`). Memory stays bounded on the boss: a run's own windows
//! ([`crate::run_io`]) and at most [`MAX_STREAMS`] streams per grant, where a stream whose
//! request is over gives way to a new one even if its holder never finished it (a holder
//! that went away). Revoking the grant cancels its streams.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gobs_runtime::{Promise, spawn_blocking};
use serde_bytes::ByteBuf;

use crate::model::Cancel;
use crate::run_io::{Piece, RunEnds, Stream};

/// Streams open at once through one grant.
pub const MAX_STREAMS: usize = 16;
/// The most one `output` answers (a chunk more than this, if one chunk is larger).
pub const BATCH: usize = 1 << 20;
/// The largest chunk `input` takes.
pub const MAX_INPUT: usize = 256 * 1024;
/// How long an `output` call waits for output before answering an empty batch (the
/// holder asks again): a call in flight is never held for ever by a quiet command.
const PATIENCE: Duration = Duration::from_secs(30);

/// What `output` answers: chunks as (1 = stdout, 2 = stderr, bytes), and whether the
/// stream has ended (nothing follows).
pub type Batch = (Vec<(u8, ByteBuf)>, bool);

/// One open stream.
struct Session {
    cancel: Cancel,
    stdin: Mutex<Option<SyncSender<Vec<u8>>>>,
    output: Arc<Mutex<Receiver<Piece>>>,
    /// The request's answer (JSON), until `finish` takes it.
    answer: Mutex<Option<Promise<String>>>,
    /// The answer instead, once the grant was revoked (JSON).
    refused: Mutex<Option<String>>,
    /// Whether its request is over (its answer is there).
    over: Arc<AtomicBool>,
}

/// A grant's open streams, by number (not saved: a restart ends them).
#[derive(Default)]
pub struct Streams {
    open: Mutex<BTreeMap<u64, Arc<Session>>>,
    next: Mutex<u64>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.open.lock().map_or(0, |o| o.len());
        write!(f, "Streams({n})")
    }
}

impl Streams {
    /// Whether another stream may open: when all are taken, those whose request is over
    /// are let go first.
    pub fn has_room(&self) -> bool {
        let mut open = self.lock();
        if open.len() >= MAX_STREAMS {
            open.retain(|_, s| !s.over.load(Ordering::Acquire));
        }
        open.len() < MAX_STREAMS
    }

    /// Keeps a stream of `ends` (their runner's answer is `answer`; `over` is set once it
    /// is there): its number.
    pub fn add(
        &self,
        ends: RunEnds,
        cancel: Cancel,
        answer: Promise<String>,
        over: Arc<AtomicBool>,
    ) -> u64 {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        let session = Session {
            cancel,
            stdin: Mutex::new(Some(ends.stdin)),
            output: Arc::new(Mutex::new(ends.output)),
            answer: Mutex::new(Some(answer)),
            refused: Mutex::new(None),
            over,
        };
        self.lock().insert(*next, Arc::new(session));
        *next
    }

    /// Passes `bytes` to stream `id`'s standard input: answers whether it was taken (not:
    /// the command no longer reads it).
    pub fn input(&self, id: u64, bytes: Vec<u8>) -> Result<Promise<bool>, String> {
        if bytes.len() > MAX_INPUT {
            return Err(format!(
                "an input chunk of {} bytes is over the limit of {MAX_INPUT}",
                bytes.len()
            ));
        }
        let session = self.get(id)?;
        let stdin = lock(&session.stdin).clone();
        Ok(spawn_blocking(move || {
            stdin.is_some_and(|tx| tx.send(bytes).is_ok())
        }))
    }

    /// Ends stream `id`'s standard input.
    pub fn input_end(&self, id: u64) -> Result<(), String> {
        lock(&self.get(id)?.stdin).take();
        Ok(())
    }

    /// The output stream `id` made since the last call (waiting for some, or its end).
    pub fn output(&self, id: u64) -> Result<Promise<Batch>, String> {
        let output = self.get(id)?.output.clone();
        Ok(spawn_blocking(move || batch(&lock(&output))))
    }

    /// Stream `id`'s answer (JSON), once its request is done; the stream is closed.
    pub fn finish(&self, id: u64) -> Result<Promise<String>, String> {
        let session = self.lock().remove(&id).ok_or_else(|| unknown(id))?;
        lock(&session.stdin).take();
        if let Some(refused) = lock(&session.refused).take() {
            return Ok(Promise::fulfilled(refused));
        }
        let answer = lock(&session.answer).take();
        answer.ok_or_else(|| unknown(id))
    }

    /// Cancels every stream (the grant was revoked): their requests end, answered
    /// `refused` (JSON).
    pub fn cancel_all(&self, refused: &str) {
        for session in self.lock().values() {
            *lock(&session.refused) = Some(refused.to_string());
            session.cancel.cancel();
            lock(&session.stdin).take();
        }
    }

    fn get(&self, id: u64) -> Result<Arc<Session>, String> {
        self.lock().get(&id).cloned().ok_or_else(|| unknown(id))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Session>>> {
        lock(&self.open)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unknown(id: u64) -> String {
    format!("no open stream {id} through this share (finished, or ended by a restart)")
}

/// Waits for a first piece of output (up to [`PATIENCE`]), then takes what else is
/// there, up to [`BATCH`] bytes.
fn batch(output: &Receiver<Piece>) -> Batch {
    let mut chunks = Vec::new();
    let mut size = 0;
    let mut next = match output.recv_timeout(PATIENCE) {
        Ok(piece) => Some(piece),
        Err(RecvTimeoutError::Timeout) => return (chunks, false),
        Err(RecvTimeoutError::Disconnected) => return (chunks, true),
    };
    while let Some(piece) = next.take() {
        match piece {
            Piece::Out(which, bytes) => {
                size += bytes.len();
                let which = match which {
                    Stream::Stdout => 1,
                    Stream::Stderr => 2,
                };
                chunks.push((which, ByteBuf::from(bytes)));
            }
            Piece::End => return (chunks, true),
        }
        if size < BATCH {
            next = output.try_recv().ok();
        }
    }
    (chunks, false)
}
