//! Running one command on a `local` machine: start it confined ([`Jail`]), pass what it
//! prints on as it is read and feed it standard input ([`pump`]), and stop it when it runs
//! too long or its client went away. Blocking: call it off the vats.
//!
//! A request without streams of its own gets the whole output at the end, each of stdout
//! and stderr keeping its first [`MAX_RUN_OUTPUT`] bytes ([`crate::run_io::collect`]), with
//! a note at the end of stderr saying how much was cut. The bound is the same through the
//! daemon and embedded: the capture happens here, before either sees the output.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::confine::Jail;
use super::pump::{self, Streams};
use super::pty;
use crate::model::{Cancel, MAX_RUN_OUTPUT, RunOutput};
use crate::run_io::{self, RunIo};
use crate::tty::Tty;

/// What a run may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The command is killed (its whole process group) after this long.
    pub timeout: Duration,
    /// Bytes kept of each of stdout and stderr.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(3600),
            max_output: MAX_RUN_OUTPUT,
        }
    }
}

/// Runs `argv` confined by `jail`; with `shell` (e.g. `/bin/sh`) it runs
/// `shell -c "ARGV..."` instead; with `tty`, in a pseudo-terminal of its own
/// ([`pty::stream_in_terminal`]). Its streams are `io`'s, or without one its output is kept
/// ([`run_io::collect`], at most `limits.max_output` bytes a stream) and its standard input
/// is empty. An `Err` means the command could not be started or was cancelled; a command
/// that ran and failed is an `Ok` with its exit code.
pub fn run(
    jail: &Jail,
    (shell, tty): (Option<&str>, Option<&Tty>),
    argv: &[String],
    limits: Limits,
    io: Option<RunIo>,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let machine = &jail.machine;
    let mut cmd = match shell {
        Some(shell) => {
            let line = shlex::try_join(argv.iter().map(String::as_str))
                .map_err(|e| format!("cannot quote the command for {shell}: {e}"))?;
            let mut cmd = Command::new(shell);
            cmd.arg("-c").arg(line);
            cmd
        }
        None => {
            let (first, rest) = argv
                .split_first()
                .ok_or_else(|| "no command to run".to_string())?;
            let mut cmd = Command::new(first);
            cmd.args(rest);
            cmd
        }
    };
    jail.apply(&mut cmd)?;
    let what = shell.unwrap_or_else(|| argv.first().map_or("", String::as_str));
    let place = format!("machine {machine}");
    run_io::collect(io, limits.max_output, |io| match tty {
        Some(tty) => {
            let streams = pump::io_streams(&io);
            let streams = pty::TerminalStreams {
                output: streams.stdout,
                input: streams.stdin,
                sizes: Box::new(pty::FromResizes::new(io.resizes.clone())),
            };
            let (what, place) = (what, place.as_str());
            let owner = Some(jail.uid);
            pty::stream_in_terminal(cmd, tty, owner, (what, place), limits.timeout, streams, cancel)
        }
        None => stream_command(cmd, what, &place, limits.timeout, pump::io_streams(&io), cancel),
    })
}

/// Runs the prepared `cmd` (`what` names it in errors, `place` says where it runs) with
/// its output kept as [`run`] keeps it and standard input empty.
pub fn run_command(
    cmd: Command,
    what: &str,
    place: &str,
    limits: Limits,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    run_io::collect(None, limits.max_output, |io| {
        stream_command(cmd, what, place, limits.timeout, pump::io_streams(&io), cancel)
    })
}

/// Starts the prepared `cmd` as the leader of its own process group, its three streams
/// piped, and runs it to its end with `streams` ([`pump::pump`]): the part shared with the
/// hob-client of network machines.
pub fn stream_command(
    mut cmd: Command,
    what: &str,
    place: &str,
    timeout: Duration,
    streams: Streams,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let child = cmd
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {what:?} on {place}: {e}"))?;
    pump::pump(child, streams, timeout, cancel)
}
