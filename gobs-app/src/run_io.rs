//! A `run`'s streams inside one process: what a command prints, chunk by chunk, and what it
//! is given on standard input, between whoever runs the command (a `local` machine, the
//! boss's side of a network machine's stream) and whoever shows it (the daemon's
//! connection, the command line).
//!
//! Both ways are bounded channels of chunks of at most [`CHUNK`] bytes: a runner that
//! produces faster than its reader takes blocks after [`OUTPUT_WINDOW`] chunks, and a
//! writer of standard input after [`STDIN_WINDOW`], so memory stays bounded on every hop
//! whatever the speeds. A request that carries no [`RunIo`] gets the whole output at the
//! end, its streams cut at a bound ([`collect`]): a thin layer on the stream.

use std::fmt;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use crate::model::RunOutput;
use crate::tty::Resizes;

/// Largest chunk of output or input, in bytes.
pub const CHUNK: usize = 64 * 1024;
/// Chunks of output a runner may have sent and not yet seen taken (1 MiB): enough that a
/// reader that keeps up seldom finds the channel empty, nor the runner full, so neither
/// sleeps per chunk.
pub const OUTPUT_WINDOW: usize = 16;
/// Chunks of standard input buffered between the writer and the runner (512 KiB).
pub const STDIN_WINDOW: usize = 8;

/// Which output stream a chunk is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// Its file descriptor's number (1 or 2), which names it in data frames
    /// ([`crate::daemon::stream`]).
    pub fn fd(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }

    /// The stream of file descriptor `fd`, if it is one.
    pub fn of_fd(fd: u8) -> Option<Stream> {
        [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .find(|s| s.fd() == fd)
    }

    /// Its name (`stdout`).
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What travels from the runner to the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A chunk of one of the command's outputs.
    Out(Stream, Vec<u8>),
    /// The run is over: no more output follows ([`RunIo::end`]).
    End,
}

/// The runner's end of a run's streams. Clones share them.
#[derive(Clone)]
pub struct RunIo {
    out: SyncSender<Piece>,
    stdin: Arc<Mutex<Option<Receiver<Vec<u8>>>>>,
    /// The terminal's size changes, for a run with a terminal.
    pub resizes: Resizes,
}

/// The reader's end: output to show, and where standard input goes (dropping it is end of
/// file).
pub struct RunEnds {
    /// The command's output, in the order it was read, then [`Piece::End`].
    pub output: Receiver<Piece>,
    /// Standard input; dropped, it is end of file.
    pub stdin: SyncSender<Vec<u8>>,
    /// Where the terminal's size changes go, for a run with a terminal.
    pub resizes: Resizes,
}

impl RunIo {
    /// A run's streams: the runner's end and the reader's.
    pub fn pair() -> (RunIo, RunEnds) {
        let (out, output) = sync_channel(OUTPUT_WINDOW);
        let (stdin, stdin_rx) = sync_channel(STDIN_WINDOW);
        let resizes = Resizes::default();
        let io = RunIo {
            out,
            stdin: Arc::new(Mutex::new(Some(stdin_rx))),
            resizes: resizes.clone(),
        };
        let ends = RunEnds {
            output,
            stdin,
            resizes,
        };
        (io, ends)
    }

    /// Passes on `chunk` of `stream`, blocking while the reader is [`OUTPUT_WINDOW`] chunks
    /// behind; an error once the reader is gone.
    pub fn send(&self, stream: Stream, chunk: Vec<u8>) -> Result<(), String> {
        self.out
            .send(Piece::Out(stream, chunk))
            .map_err(|_| "the command's output has no reader any more".to_string())
    }

    /// Passes on `chunk` of `stream` if the reader has room for it now, without waiting;
    /// gives it back if not (or if the reader is gone: [`RunIo::send`] then says so).
    pub fn try_send(&self, stream: Stream, chunk: Vec<u8>) -> Result<(), Vec<u8>> {
        match self.out.try_send(Piece::Out(stream, chunk)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(piece) | TrySendError::Disconnected(piece)) => match piece {
                Piece::Out(_, chunk) => Err(chunk),
                Piece::End => Err(Vec::new()),
            },
        }
    }

    /// Tells the reader the run is over (output a process left behind may still try to
    /// come after it, and is not read), and whoever waits for the terminal's size changes.
    pub fn end(&self) {
        self.resizes.close();
        let _ = self.out.send(Piece::End);
    }

    /// Standard input, for the one runner that feeds it to the command (`None` once taken).
    pub fn take_stdin(&self) -> Option<Receiver<Vec<u8>>> {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl fmt::Debug for RunIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunIo")
    }
}

/// Two requests are equal whatever streams they carry.
impl PartialEq for RunIo {
    fn eq(&self, _: &RunIo) -> bool {
        true
    }
}

impl Eq for RunIo {}

/// Runs `run` with `io`, or, without one, with streams of its own whose output is kept,
/// each of stdout and stderr cut after `max` bytes with a note at the end of stderr (and
/// standard input empty): the whole-answer form of `run`.
pub fn collect(
    io: Option<RunIo>,
    max: usize,
    run: impl FnOnce(RunIo) -> Result<RunOutput, String>,
) -> Result<RunOutput, String> {
    if let Some(io) = io {
        return run(io);
    }
    let (io, ends) = RunIo::pair();
    drop(ends.stdin);
    let keeper = std::thread::spawn(move || {
        let mut kept = [Kept::default(), Kept::default()];
        while let Ok(Piece::Out(stream, chunk)) = ends.output.recv() {
            kept[stream as usize].take(&chunk, max);
        }
        kept
    });
    let ran = run(io.clone());
    io.end();
    let [out, err] = keeper
        .join()
        .map_err(|_| "the thread keeping the command's output failed".to_string())?;
    let mut ran = ran?;
    let notes = ran.stderr;
    ran.stdout = String::from_utf8_lossy(&out.bytes).into_owned();
    ran.stderr = String::from_utf8_lossy(&err.bytes).into_owned();
    ran.stderr.push_str(&out.note(max, Stream::Stdout));
    ran.stderr.push_str(&err.note(max, Stream::Stderr));
    ran.stderr.push_str(&notes);
    ran.truncated |= out.dropped > 0 || err.dropped > 0;
    Ok(ran)
}

/// One stream's first bytes, and how many more there were.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Kept {
    fn take(&mut self, chunk: &[u8], max: usize) {
        let kept = chunk.len().min(max.saturating_sub(self.bytes.len()));
        self.bytes.extend_from_slice(&chunk[..kept]);
        self.dropped += (chunk.len() - kept) as u64;
    }

    /// The note saying how much was cut, if anything was.
    fn note(&self, max: usize, stream: Stream) -> String {
        if self.dropped == 0 {
            return String::new();
        }
        format!(
            "\n[gobs-app: {} cut at {max} bytes; {} more bytes were not kept]\n",
            stream.name(),
            self.dropped
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn ended(stderr: &str) -> RunOutput {
        RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: String::new(),
            stderr: stderr.into(),
            truncated: false,
        }
    }

    #[test]
    fn without_streams_the_output_is_kept_and_cut_with_a_note() {
        let out = collect(None, 4, |io| {
            assert!(io.take_stdin().unwrap().recv().is_err(), "stdin is empty");
            io.send(Stream::Stdout, b"abc".to_vec())?;
            io.send(Stream::Stdout, b"defg".to_vec())?;
            io.send(Stream::Stderr, b"e".to_vec())?;
            Ok(ended("[limit note]"))
        })
        .unwrap();
        assert_eq!(out.stdout, "abcd");
        assert_eq!(
            out.stderr,
            "e\n[gobs-app: stdout cut at 4 bytes; 3 more bytes were not kept]\n[limit note]"
        );
        assert!(out.truncated);
    }

    #[test]
    fn a_runner_ahead_of_its_reader_waits_at_the_window() {
        let (io, ends) = RunIo::pair();
        for _ in 0..OUTPUT_WINDOW {
            io.send(Stream::Stdout, vec![0]).unwrap();
        }
        let past = io.out.try_send(Piece::Out(Stream::Stdout, vec![1]));
        assert!(
            matches!(past, Err(std::sync::mpsc::TrySendError::Full(_))),
            "a send past the window would block"
        );
        assert_eq!(
            ends.output.recv().unwrap(),
            Piece::Out(Stream::Stdout, vec![0])
        );
        io.out
            .try_send(Piece::Out(Stream::Stdout, vec![1]))
            .unwrap();
        drop(ends.output);
        let err = io.send(Stream::Stdout, vec![2]).unwrap_err();
        assert_eq!(err, "the command's output has no reader any more");
    }
}
