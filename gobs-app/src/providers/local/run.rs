//! Running one command on a `local` machine: start it confined ([`Jail`]), capture what it
//! prints with a bound, and stop it when it runs too long or its client went away.
//! Blocking: call it off the vats.
//!
//! Output is read as it comes, one poll loop over both pipes: each of stdout and stderr
//! keeps its first [`MAX_RUN_OUTPUT`] bytes, and what comes after is counted and dropped
//! (memory stays bounded whatever the command prints), with a note at the end of stderr
//! saying how much was cut. The bound is the same through the daemon and embedded: the
//! capture happens here, before either sees the output.

use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};

use super::confine::Jail;
use crate::model::{Cancel, MAX_RUN_OUTPUT, RunOutput};

/// How long output is still read after the command exited (a background process it left
/// may hold the pipes open).
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

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

/// Runs `argv` confined by `jail`, stdin closed; with `shell` (e.g. `/bin/sh`) it runs
/// `shell -c "ARGV..."` instead. An `Err` means the command could not be started or was
/// cancelled; a command that ran and failed is an `Ok` with its exit code.
pub fn run(
    jail: &Jail,
    shell: Option<&str>,
    argv: &[String],
    limits: Limits,
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
    run_command(cmd, what, &format!("machine {machine}"), limits, cancel)
}

/// Runs the prepared `cmd` (`what` names it in errors, `place` says where it runs), stdin
/// closed, with output captured and limited as [`run`] does: the part shared with the
/// `container` machines' hob-client.
pub fn run_command(
    mut cmd: Command,
    what: &str,
    place: &str,
    limits: Limits,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = spawned.map_err(|e| format!("cannot start {what:?} on {place}: {e}"))?;
    let outcome = capture(&mut child, limits, cancel);
    if outcome.is_err() {
        // Reading failed: do not leave the command running unwatched.
        kill_group(&child);
    }
    // Background processes the command left keep running until the machine is destroyed.
    let _ = child.wait();
    let captured = outcome.map_err(|e| format!("reading the command's output failed: {e}"))?;
    if captured.cancelled {
        return Err("the client went away, so the command was killed".to_string());
    }
    let stdout = String::from_utf8_lossy(&captured.stdout.bytes).into_owned();
    let mut stderr = String::from_utf8_lossy(&captured.stderr.bytes).into_owned();
    stderr.push_str(&captured.stdout.note(limits.max_output, "stdout"));
    stderr.push_str(&captured.stderr.note(limits.max_output, "stderr"));
    if captured.timed_out {
        stderr.push_str(&format!(
            "\n[gobs-app: the command ran past its limit of {} and was killed]\n",
            humantime::format_duration(limits.timeout)
        ));
    }
    let status = captured.status;
    Ok(RunOutput {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        truncated: captured.stdout.dropped > 0 || captured.stderr.dropped > 0,
        stdout,
        stderr,
    })
}

fn kill_group(child: &Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// One stream's first bytes, and how many more there were.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: u64,
    open: bool,
}

impl Kept {
    fn take(&mut self, chunk: &[u8], max: usize) {
        let room = max.saturating_sub(self.bytes.len());
        let kept = chunk.len().min(room);
        self.bytes.extend_from_slice(&chunk[..kept]);
        self.dropped += (chunk.len() - kept) as u64;
    }

    /// The note saying how much was cut, if anything was.
    fn note(&self, max: usize, name: &str) -> String {
        if self.dropped == 0 {
            return String::new();
        }
        format!(
            "\n[gobs-app: {name} cut at {max} bytes; {} more bytes were not kept]\n",
            self.dropped
        )
    }
}

struct Captured {
    stdout: Kept,
    stderr: Kept,
    status: Option<std::process::ExitStatus>,
    timed_out: bool,
    cancelled: bool,
}

fn capture(child: &mut Child, limits: Limits, cancel: &Cancel) -> io::Result<Captured> {
    let mut out: Option<ChildStdout> = child.stdout.take();
    let mut err: Option<ChildStderr> = child.stderr.take();
    let mut c = Captured {
        stdout: Kept {
            open: out.is_some(),
            ..Kept::default()
        },
        stderr: Kept {
            open: err.is_some(),
            ..Kept::default()
        },
        status: None,
        timed_out: false,
        cancelled: false,
    };
    let deadline = Instant::now() + limits.timeout;
    let mut exited_at: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if c.status.is_none() {
            if let Some(status) = child.try_wait()? {
                c.status = Some(status);
                exited_at = Some(Instant::now());
            } else if cancel.is_cancelled() {
                c.cancelled = true;
                kill_group(child);
            } else if Instant::now() >= deadline && !c.timed_out {
                c.timed_out = true;
                kill_group(child);
            }
        }
        let drained = !c.stdout.open && !c.stderr.open;
        let draining_too_long = exited_at.is_some_and(|t| t.elapsed() >= DRAIN_AFTER_EXIT);
        if c.status.is_some() && (drained || draining_too_long) {
            return Ok(c);
        }
        if drained {
            // Nothing to read: wait for the exit.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let timeout = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let (out_ready, err_ready) = {
            let mut fds = Vec::with_capacity(2);
            if let (Some(o), true) = (&out, c.stdout.open) {
                fds.push(PollFd::new(o, PollFlags::IN));
            }
            if let (Some(e), true) = (&err, c.stderr.open) {
                fds.push(PollFd::new(e, PollFlags::IN));
            }
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
            match (c.stdout.open, c.stderr.open) {
                (true, true) => (ready(0), ready(1)),
                (true, false) => (ready(0), false),
                (false, true) => (false, ready(0)),
                (false, false) => (false, false),
            }
        };
        if out_ready && let Some(o) = out.as_mut() {
            read_some(o, &mut buf, &mut c.stdout, limits.max_output)?;
        }
        if err_ready && let Some(e) = err.as_mut() {
            read_some(e, &mut buf, &mut c.stderr, limits.max_output)?;
        }
    }
}

fn read_some(pipe: &mut impl Read, buf: &mut [u8], kept: &mut Kept, max: usize) -> io::Result<()> {
    match pipe.read(buf) {
        Ok(0) => kept.open = false,
        Ok(n) => kept.take(&buf[..n], max),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    Ok(())
}
