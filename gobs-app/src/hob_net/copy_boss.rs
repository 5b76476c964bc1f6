//! The boss's side of `put-file` and `get-file` on a network machine: the copy's stream
//! ([`crate::files::archive`]) goes through the sink of a streamed run
//! ([`super::run_sink`], with its bounds on what a machine may make the boss hold: chunks
//! of at most 64 KiB, a window of them, a window of asks, a deadline), so a copy of any size
//! holds a few chunks here.
//!
//! On the hob wire:
//!
//! - `put-stream PATH SINK`: the machine pulls the stream with the sink's `stdin` and
//!   writes it at PATH, all or nothing, checking each file's sha256;
//! - `get-stream PATH RECURSIVE SINK`: the machine reads PATH (a tree if RECURSIVE) and
//!   pushes the stream with the sink's `out "stdout" BYTES`; the receiver (the command
//!   line) checks each file's sha256.
//!
//! Both are answered `[files bytes mode sha256-or-#f]`. A hob-client of a release before
//! streamed copies has neither binding: it gets the whole form (`put-file PATH BYTES MODE`,
//! `get-file PATH`), which carries one file of at most [`MAX_FILE`] bytes, and a larger
//! copy is refused saying so. A request that does not stream (an older command line) is
//! given a stream of its own, made from or kept into its whole form.

use std::io::Write;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;

use super::call::call_through;
use super::gateway::Gateway;
use super::wire;
use crate::files::archive::{ArchiveWriter, Meta};
use crate::files::chunks::SourceReader;
use crate::files::unpack::{Unpacked, unpack_to};
use crate::files::{FileContent, MAX_FILE, check_size};
use crate::model::Cancel;
use crate::ops::get_file::Got;
use crate::ops::machine::Reply;
use crate::ops::{GetFile, MachineOp, PutFile};
use crate::providers::local::pump::{InputSource, io_streams};
use crate::run_io::{CHUNK, Piece, RunIo, Stream};

/// The method of a streamed `put-file` on the hob wire.
pub const PUT_STREAM: &str = "put-stream";
/// The method of a streamed `get-file` on the hob wire.
pub const GET_STREAM: &str = "get-stream";

/// What a hob-client without `method` answers it with.
fn no_binding(method: &str) -> String {
    format!("no binding `{method}`")
}

/// A copy's answer on the wire.
pub fn copied_term(u: &Unpacked) -> Term {
    let sha = u
        .sha256
        .as_ref()
        .map_or(Value::Bool(false), |s| Value::String(s.clone()));
    Term::List(vec![
        Term::Data(Value::from(i64::try_from(u.files).unwrap_or(i64::MAX))),
        Term::Data(Value::from(i64::try_from(u.bytes).unwrap_or(i64::MAX))),
        Term::Data(Value::from(i64::from(u.mode))),
        Term::Data(sha),
    ])
}

/// Reads a machine's answer to a copy, refusing what is not one.
fn read_copied(t: &Term) -> Result<Unpacked, String> {
    let bad = || "the machine's answer to a copy is not [files bytes mode sha256]".to_string();
    let Some(Value::List(parts)) = t.to_value() else {
        return Err(bad());
    };
    let [files, bytes, mode, sha] = parts.as_slice() else {
        return Err(bad());
    };
    let count = |v: &Value| {
        v.as_int()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(bad)
    };
    let sha256 = match sha {
        Value::Bool(false) => None,
        Value::String(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(s.clone())
        }
        _ => return Err(bad()),
    };
    Ok(Unpacked {
        files: count(files)?,
        bytes: count(bytes)?,
        mode: u32::try_from(count(mode)?).map_err(|_| bad())? & 0o7777,
        sha256,
    })
}

/// Copies `put`'s stream onto machine `machine` through gateway `g`; `default_limit` and
/// `waits` as for [`Gateway::stream_call`].
pub fn put(
    g: &Gateway,
    machine: &str,
    put: &PutFile,
    default_limit: Duration,
    waits: (Duration, Duration),
    cancel: &Cancel,
) -> Result<Reply, String> {
    let io = match &put.io {
        Some(io) => io.clone(),
        None => whole_stream(&put.content.0, put.mode().0)?,
    };
    let message = vec![Term::sym(PUT_STREAM), wire::text(&put.path)];
    let call = MachineOp::call(put, default_limit);
    match g.stream_call(machine, (message, None), call, &io, waits, cancel) {
        Ok(answer) => read_copied(&answer).map(|u| Box::new(Some(u)) as Reply),
        Err(e) if e.contains(&no_binding(PUT_STREAM)) => {
            let older = older_client(machine);
            let mut bounded = Bounded(Vec::new());
            let input = SourceReader::new(io_streams(&io).stdin);
            let file = unpack_to(input, &mut bounded, &mut |_| {}).map_err(|e| {
                format!("{older}, which copies one file of at most {MAX_FILE} bytes: {e}")
            })?;
            let whole = PutFile {
                content: FileContent(bounded.0),
                mode: Some(crate::files::FileMode(file.mode)),
                io: None,
                ..put.clone()
            };
            call_through(g, machine, &whole, default_limit, waits, cancel)
        }
        Err(e) => Err(e),
    }
}

/// Copies `get`'s path off machine `machine` through gateway `g`, its stream to `get`'s
/// streams, or, without them, kept whole in the answer (at most [`MAX_FILE`] bytes).
pub fn get(
    g: &Gateway,
    machine: &str,
    get: &GetFile,
    default_limit: Duration,
    waits: (Duration, Duration),
    cancel: &Cancel,
) -> Result<Reply, String> {
    let (io, keeper) = match &get.io {
        Some(io) => (io.clone(), None),
        None => {
            let (io, ends) = RunIo::pair();
            let keeper = std::thread::spawn(move || {
                let mut bounded = Bounded(Vec::new());
                let input = SourceReader::new(Box::new(Output(ends.output)));
                unpack_to(input, &mut bounded, &mut |_| {}).map(|_| bounded.0)
            });
            (io, Some(keeper))
        }
    };
    let message = vec![
        Term::sym(GET_STREAM),
        wire::text(&get.path),
        Term::Data(Value::Bool(get.recursive)),
    ];
    let call = MachineOp::call(get, default_limit);
    let sent = match g.stream_call(machine, (message, None), call, &io, waits, cancel) {
        Ok(answer) => read_copied(&answer).map(|u| Got {
            content: Vec::new(),
            size: u.bytes,
            files: u.files,
        }),
        Err(e) if e.contains(&no_binding(GET_STREAM)) => {
            get_whole(g, machine, get, &io, default_limit, waits, cancel)
        }
        Err(e) => Err(e),
    };
    let Some(keeper) = keeper else {
        return sent.map(|got| Box::new(got) as Reply);
    };
    io.end();
    drop(io);
    let mut got = sent?;
    got.content = keeper
        .join()
        .map_err(|_| "the thread keeping the file failed".to_string())?
        .map_err(|e| format!("cannot copy {} from machine {machine}: {e}", get.path))?;
    Ok(Box::new(got))
}

/// `get-file` from an older hob-client: the file whole, passed on as a stream.
fn get_whole(
    g: &Gateway,
    machine: &str,
    get: &GetFile,
    io: &RunIo,
    default_limit: Duration,
    waits: (Duration, Duration),
    cancel: &Cancel,
) -> Result<Got, String> {
    if get.recursive {
        return Err(format!(
            "{}, which cannot copy a directory; create the machine again to copy trees",
            older_client(machine)
        ));
    }
    let reply = call_through(g, machine, get, default_limit, waits, cancel)?;
    let got = *reply
        .downcast::<Got>()
        .map_err(|_| "`get-file`'s answer is not a file (a bug)".to_string())?;
    for chunk in one_file_stream(&got.content, crate::files::FileMode::DEFAULT.0)?.chunks(CHUNK) {
        io.send(Stream::Stdout, chunk.to_vec())?;
    }
    Ok(Got {
        content: Vec::new(),
        ..got
    })
}

fn older_client(machine: &str) -> String {
    format!("machine {machine} runs a hob-client from before streamed copies")
}

/// Streams of their own for a copy an older command line sent whole: `bytes` with mode
/// `mode` as the standard input's stream.
fn whole_stream(bytes: &[u8], mode: u32) -> Result<RunIo, String> {
    let (io, ends) = RunIo::pair();
    let stream = one_file_stream(bytes, mode)?;
    std::thread::spawn(move || {
        for chunk in stream.chunks(CHUNK) {
            if ends.stdin.send(chunk.to_vec()).is_err() {
                return;
            }
        }
    });
    Ok(io)
}

/// The stream of one file of `bytes` with mode `mode`, owned by this process, made now.
fn one_file_stream(bytes: &[u8], mode: u32) -> Result<Vec<u8>, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let meta = Meta {
        mode,
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
        mtime: i64::try_from(now.as_secs()).unwrap_or(0),
        mtime_nsec: now.subsec_nanos(),
    };
    let failed = |e: std::io::Error| format!("cannot make the copy's stream: {e}");
    let mut w = ArchiveWriter::begin(Vec::new(), 1, bytes.len() as u64).map_err(failed)?;
    w.file("", meta, bytes.len() as u64, &mut &bytes[..], &mut |_| {})
        .map_err(failed)?;
    w.finish().map_err(failed)
}

/// A file kept in memory, refused past [`MAX_FILE`] bytes.
struct Bounded(Vec<u8>);

impl Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let size = (self.0.len() + bytes.len()) as u64;
        check_size("the file", size).map_err(std::io::Error::other)?;
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A request's standard output (the copy's stream) read back as input, up to its end.
struct Output(Receiver<Piece>);

impl InputSource for Output {
    fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        match self.0.recv() {
            Ok(Piece::Out(Stream::Stdout, chunk)) => Ok(Some(chunk)),
            Ok(Piece::Out(Stream::Stderr, _)) => Ok(Some(Vec::new())),
            Ok(Piece::End) | Err(_) => Ok(None),
        }
    }
}
