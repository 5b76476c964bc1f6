//! Running one started command with its streams: what it prints goes out chunk by chunk as
//! it is read, what comes in goes to its standard input (end of file included), and it is
//! stopped (its whole process group) when it runs past its time limit, when its request is
//! cancelled, or when the other end of its streams gives up. Shared by `local` machines
//! (streams: [`crate::run_io`] channels) and the hob-client on a network machine (streams:
//! capabilities of the boss, [`crate::hob_net`]'s `run_stream`). Blocking: off the vats.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::model::{Cancel, RunOutput};
use crate::run_io::{CHUNK, RunIo, Stream};

/// How long output is still read after the command exited (a background process it left
/// may hold the pipes open).
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// How often a running command's cancel switch is looked at.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// Where a command's output goes. Each stream has its own.
pub trait OutputSink: Send + 'static {
    /// Passes on `chunk`; may block (flow control). An error means the other end gave up:
    /// the command is stopped.
    fn write(&mut self, chunk: Vec<u8>) -> Result<(), String>;
    /// Waits until everything written was taken.
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Where a command's standard input comes from.
pub trait InputSource: Send + 'static {
    /// The next chunk; `Ok(None)` at end of file; an error means the other end gave up.
    fn next(&mut self) -> Result<Option<Vec<u8>>, String>;
}

/// A stream of a [`RunIo`] as an [`OutputSink`].
struct ToIo(RunIo, Stream);

impl OutputSink for ToIo {
    fn write(&mut self, chunk: Vec<u8>) -> Result<(), String> {
        self.0.send(self.1, chunk)
    }
}

/// A [`RunIo`]'s standard input as an [`InputSource`] (none left: empty).
struct FromIo(Option<mpsc::Receiver<Vec<u8>>>);

impl InputSource for FromIo {
    fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.as_ref().and_then(|rx| rx.recv().ok()))
    }
}

/// The streams of `io` as a pump takes them.
pub fn io_streams(io: &RunIo) -> Streams {
    Streams {
        stdout: Box::new(ToIo(io.clone(), Stream::Stdout)),
        stderr: Box::new(ToIo(io.clone(), Stream::Stderr)),
        stdin: Box::new(FromIo(io.take_stdin())),
    }
}

/// A command's three streams, seen from the command's runner.
pub struct Streams {
    /// Where its standard output goes.
    pub stdout: Box<dyn OutputSink>,
    /// Where its standard error goes.
    pub stderr: Box<dyn OutputSink>,
    /// Where its standard input comes from.
    pub stdin: Box<dyn InputSource>,
}

/// Runs `child` (started with all three streams piped, as the leader of its own process
/// group) to its end with `streams`, killed after `timeout` or when `cancel` is set or a
/// stream's other end gives up. The answer has no output (it went out on the streams),
/// only how the command ended and, in stderr, a note if it was killed for its time limit.
pub fn pump(
    mut child: Child,
    streams: Streams,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let gave_up = Arc::new(AtomicBool::new(false));
    let (drained_tx, drained) = mpsc::channel::<Result<(), String>>();
    let mut readers = 0;
    for (pipe, sink) in [
        (child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>), streams.stdout),
        (child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>), streams.stderr),
    ] {
        let Some(pipe) = pipe else { continue };
        readers += 1;
        let (done, gave_up) = (drained_tx.clone(), gave_up.clone());
        std::thread::spawn(move || {
            let pumped = pump_out(pipe, sink);
            if pumped.is_err() {
                gave_up.store(true, Ordering::SeqCst);
            }
            let _ = done.send(pumped);
        });
    }
    if let Some(stdin) = child.stdin.take() {
        let gave_up = gave_up.clone();
        std::thread::spawn(move || {
            if pump_in(streams.stdin, stdin).is_err() {
                gave_up.store(true, Ordering::SeqCst);
            }
        });
    }
    let (status, stopped) = wait(child, timeout, cancel, &gave_up)?;
    // Output still in the pipes is passed on; a background process holding them open is
    // not waited for long.
    let until = Instant::now() + DRAIN_AFTER_EXIT;
    let mut failed = None;
    for _ in 0..readers {
        match drained.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Err(e)) => failed = Some(e),
            Ok(Ok(())) => {}
            Err(_) => break,
        }
    }
    ended(status, stopped, failed, timeout)
}

/// How a command that ended (`status`, stopped for `stopped`) is answered: an error if its
/// client went away or a stream failed (`failed` says how), else its exit status with a note
/// if it ran past `timeout`.
pub(super) fn ended(
    status: ExitStatus,
    stopped: Option<Stopped>,
    failed: Option<String>,
    timeout: Duration,
) -> Result<RunOutput, String> {
    match stopped {
        Some(Stopped::Cancelled) => {
            return Err("the client went away, so the command was killed".to_string());
        }
        Some(Stopped::GaveUp) => {
            return Err(format!(
                "the command was killed: its streams ended before it did ({})",
                failed.unwrap_or_else(|| "standard input failed".into())
            ));
        }
        _ => {}
    }
    let note = match stopped {
        Some(Stopped::TimedOut) => format!(
            "\n[gobs-app: the command ran past its limit of {} and was killed]\n",
            humantime::format_duration(timeout)
        ),
        _ => String::new(),
    };
    Ok(RunOutput {
        exit_code: status.code(),
        signal: status.signal(),
        stdout: String::new(),
        stderr: note,
        truncated: false,
    })
}

/// Why a command was stopped before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    TimedOut,
    Cancelled,
    GaveUp,
}

/// Waits for `child` to end, killing its process group on the first reason to stop it.
/// The wait is a thread's, so the end is seen at once; the reasons are looked at every
/// [`CANCEL_CHECK`].
pub(super) fn wait(
    mut child: Child,
    timeout: Duration,
    cancel: &Cancel,
    gave_up: &AtomicBool,
) -> Result<(ExitStatus, Option<Stopped>), String> {
    let pid = child.id();
    let (ended_tx, ended) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = ended_tx.send(child.wait());
    });
    let deadline = Instant::now() + timeout;
    let mut stopped = None;
    loop {
        let slice = CANCEL_CHECK.min(deadline.saturating_duration_since(Instant::now()));
        match ended.recv_timeout(slice) {
            Ok(Ok(status)) => return Ok((status, stopped)),
            Ok(Err(e)) => {
                kill_group(pid);
                return Err(format!("cannot wait for the command: {e}"));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the thread waiting for the command failed".to_string());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if stopped.is_none() {
            stopped = if cancel.is_cancelled() {
                Some(Stopped::Cancelled)
            } else if gave_up.load(Ordering::SeqCst) {
                Some(Stopped::GaveUp)
            } else if Instant::now() >= deadline {
                Some(Stopped::TimedOut)
            } else {
                None
            };
            if stopped.is_some() {
                kill_group(pid);
            }
        }
    }
}

/// Kills the process group led by `pid`.
pub fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn pump_out(mut pipe: Box<dyn Read + Send>, mut sink: Box<dyn OutputSink>) -> Result<(), String> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return sink.flush(),
            Ok(n) => sink.write(buf[..n].to_vec())?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the command's output failed: {e}")),
        }
    }
}

/// Writes what `source` gives to the command's standard input `stdin` until its end.
pub(super) fn pump_in(mut source: Box<dyn InputSource>, mut stdin: impl Write) -> Result<(), String> {
    while let Some(chunk) = source.next()? {
        if stdin.write_all(&chunk).is_err() {
            // The command closed its standard input: what is left is not for it.
            return Ok(());
        }
    }
    Ok(())
}
