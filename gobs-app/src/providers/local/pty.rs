//! Running one command in a pseudo-terminal (`run -t`): the command leads a session of its
//! own whose controlling terminal is the pty's other side, with `TERM` and the size the run
//! asked for; what it writes (standard output and error are the terminal, one stream) goes
//! out chunk by chunk, what comes in is typed into the terminal (so a Ctrl-C byte is the
//! terminal's interrupt for the command's foreground process group), and the terminal's size
//! follows the user's. Shared, as [`super::pump`] is, by `local` machines and the hob-client.
//! Blocking: off the vats.

use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::pty::{OpenptFlags, grantpt, ioctl_tiocgptpeer, openpt, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

use super::pump::{self, DRAIN_AFTER_EXIT, InputSource, OutputSink};
use crate::model::{Cancel, RunOutput};
use crate::run_io::CHUNK;
use crate::tty::{Resized, Resizes, Tty, WinSize};

/// How long output a process left behind keeps coming is still read after the command
/// exited, at most.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// The signals a terminal sends, given their default action in the command.
const TERMINAL_SIGNALS: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGHUP,
];

/// How often the terminal's reader looks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Where a terminal's size changes come from.
pub trait SizeSource: Send + 'static {
    /// The terminal's next size; `None` once no change will come (the run is over).
    fn next(&mut self) -> Option<WinSize>;
}

/// The size changes of a run's [`Resizes`].
pub struct FromResizes {
    resizes: Resizes,
    seen: u64,
}

impl FromResizes {
    /// The changes of `resizes` from now on.
    pub fn new(resizes: Resizes) -> FromResizes {
        FromResizes { resizes, seen: 0 }
    }
}

impl SizeSource for FromResizes {
    fn next(&mut self) -> Option<WinSize> {
        loop {
            match self.resizes.next_after(self.seen, Duration::from_secs(3600)) {
                Resized::To(count, size) => {
                    self.seen = count;
                    return Some(size);
                }
                Resized::Unchanged => {}
                Resized::Closed => return None,
            }
        }
    }
}

/// A terminal's streams, seen from the command's runner.
pub struct TerminalStreams {
    /// Where what the command writes to the terminal goes.
    pub output: Box<dyn OutputSink>,
    /// What is typed into the terminal.
    pub input: Box<dyn InputSource>,
    /// The terminal's size changes.
    pub sizes: Box<dyn SizeSource>,
}

/// Starts the prepared `cmd` (no process group set: it leads a session of its own) in a new
/// pseudo-terminal as `tty` asks, its other side owned by `owner` (the uid it runs as, when
/// it is not ours), and runs it to its end with `streams`, killed after `timeout` or when
/// `cancel` is set or a stream's other end gives up. `what` names it in errors, `place`
/// says where it runs.
pub fn stream_in_terminal(
    cmd: Command,
    tty: &Tty,
    owner: Option<u32>,
    (what, place): (&str, &str),
    timeout: Duration,
    streams: TerminalStreams,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let (child, master) = spawn(cmd, tty, owner, what, place)?;
    run(child, master, streams, timeout, cancel)
}

fn size(size: WinSize) -> Winsize {
    Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn spawn(
    mut cmd: Command,
    tty: &Tty,
    owner: Option<u32>,
    what: &str,
    place: &str,
) -> Result<(Child, OwnedFd), String> {
    let failed = |doing: &str, e: rustix::io::Errno| {
        format!(
            "cannot {doing} for {what:?} on {place}: {e} (a terminal needs /dev/ptmx and a \
             devpts at /dev/pts)"
        )
    };
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = openpt(flags).map_err(|e| failed("open a pseudo-terminal", e))?;
    grantpt(&master).map_err(|e| failed("grant the pseudo-terminal", e))?;
    unlockpt(&master).map_err(|e| failed("unlock the pseudo-terminal", e))?;
    let peer = ioctl_tiocgptpeer(&master, flags)
        .map_err(|e| failed("open the pseudo-terminal's other side", e))?;
    if let Some(uid) = owner {
        rustix::fs::fchown(&peer, Some(rustix::process::Uid::from_raw(uid)), None)
            .map_err(|e| failed("give the terminal to the command's user", e))?;
    }
    tcsetwinsize(&master, size(tty.size)).map_err(|e| failed("size the terminal", e))?;
    let stdio = || {
        peer.try_clone()
            .map(Stdio::from)
            .map_err(|e| format!("cannot share the terminal for {what:?} on {place}: {e}"))
    };
    cmd.stdin(stdio()?)
        .stdout(stdio()?)
        .stderr(stdio()?)
        .env("TERM", &tty.term);
    // SAFETY: only async-signal-safe system calls (signal, setsid, ioctl on a descriptor
    // the child already holds); no allocation, no lock.
    unsafe {
        cmd.pre_exec(|| {
            // A runner started in the background ignores the terminal's signals; the
            // command must not (Ctrl-C would not reach it), as after a login.
            for signal in TERMINAL_SIGNALS {
                libc::signal(signal, libc::SIG_DFL);
            }
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(BorrowedFd::borrow_raw(0))?;
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what:?} on {place}: {e}"))?;
    // The command's copies of the terminal's side are its own now: ours must close, so the
    // master sees the end once the command and what it left are gone.
    drop(cmd);
    drop(peer);
    Ok((child, master))
}

fn run(
    child: Child,
    master: OwnedFd,
    streams: TerminalStreams,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<RunOutput, String> {
    let dup = |what: &str| {
        master
            .try_clone()
            .map_err(|e| format!("cannot share the terminal for its {what}: {e}"))
    };
    let (reader, writer, sizer) = (dup("output")?, dup("input")?, dup("size")?);
    let gave_up = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (drained_tx, drained) = mpsc::channel::<Result<(), String>>();
    {
        let (gave_up, stop) = (gave_up.clone(), stop.clone());
        let output = streams.output;
        std::thread::spawn(move || {
            let pumped = read_terminal(&reader, output, &stop);
            if pumped.is_err() {
                gave_up.store(true, Ordering::SeqCst);
            }
            let _ = drained_tx.send(pumped);
        });
    }
    {
        let gave_up = gave_up.clone();
        let input = streams.input;
        std::thread::spawn(move || {
            if pump::pump_in(input, File::from(writer)).is_err() {
                gave_up.store(true, Ordering::SeqCst);
            }
        });
    }
    let mut sizes = streams.sizes;
    std::thread::spawn(move || {
        while let Some(next) = sizes.next() {
            if tcsetwinsize(&sizer, size(next)).is_err() {
                return;
            }
        }
    });
    drop(master);
    let (status, stopped) = pump::wait(child, timeout, cancel, &gave_up)?;
    // What the command wrote before it ended is passed on; output of what it left behind
    // is read while it keeps coming, for a while.
    let failed = match drained.recv_timeout(DRAIN_AFTER_EXIT) {
        Ok(done) => done.err(),
        Err(_) => {
            stop.store(true, Ordering::SeqCst);
            drained.recv_timeout(DRAIN_LIMIT).ok().and_then(Result::err)
        }
    };
    stop.store(true, Ordering::SeqCst);
    pump::ended(status, stopped, failed, timeout)
}

/// Passes what the command writes to the terminal on to `output`, until the terminal's end
/// (every process holding its other side gone) or, once `stop` is set, until nothing more
/// is waiting to be read.
fn read_terminal(
    master: &OwnedFd,
    mut output: Box<dyn OutputSink>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut buf = vec![0u8; CHUNK];
    let slice = Timespec::try_from(STOP_CHECK).unwrap_or_default();
    loop {
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        match poll(&mut fds, Some(&slice)) {
            Ok(0) if stop.load(Ordering::SeqCst) => return output.flush(),
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("waiting for the terminal's output failed: {e}")),
        }
        match rustix::io::read(master, &mut buf) {
            Ok(0) => return output.flush(),
            Ok(n) => output.write(buf[..n].to_vec())?,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            // EIO: no process holds the terminal's other side any more.
            Err(rustix::io::Errno::IO) => return output.flush(),
            Err(e) => return Err(format!("reading the terminal's output failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::sync::Mutex;

    /// Output kept in memory, with a signal for those waiting on it.
    #[derive(Clone, Default)]
    struct Kept(Arc<(Mutex<Vec<u8>>, std::sync::Condvar)>);

    impl Kept {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.0.lock().unwrap()).into_owned()
        }

        /// Waits (at most a minute) until the output holds `marker`.
        fn wait_for(&self, marker: &str) -> Result<(), String> {
            let kept = self.0.0.lock().unwrap();
            let has = |k: &mut Vec<u8>| !String::from_utf8_lossy(k).contains(marker);
            let (kept, waited) = self
                .0
                .1
                .wait_timeout_while(kept, Duration::from_secs(60), has)
                .unwrap();
            if waited.timed_out() {
                return Err(format!(
                    "no {marker:?} in the output: {}",
                    String::from_utf8_lossy(&kept)
                ));
            }
            Ok(())
        }
    }

    impl OutputSink for Kept {
        fn write(&mut self, chunk: Vec<u8>) -> Result<(), String> {
            self.0.0.lock().unwrap().extend(chunk);
            self.0.1.notify_all();
            Ok(())
        }
    }

    /// Input typed once the output shows a marker, step by step; then nothing more (no end
    /// of file: a terminal's input has none).
    struct Typed {
        seen: Kept,
        steps: std::vec::IntoIter<(&'static str, &'static [u8])>,
    }

    impl InputSource for Typed {
        fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
            match self.steps.next() {
                Some((marker, bytes)) => {
                    self.seen.wait_for(marker)?;
                    Ok(Some(bytes.to_vec()))
                }
                None => Ok(None),
            }
        }
    }

    fn tty(rows: u16, cols: u16) -> Tty {
        Tty {
            term: "xterm-test".into(),
            size: WinSize { rows, cols },
        }
    }

    /// Runs `script` in a terminal of `tty`, typing each step's bytes once its marker was
    /// written; its output and how it ended.
    fn terminal_run(
        script: &str,
        tty: &Tty,
        steps: Vec<(&'static str, &'static [u8])>,
        resizes: &Resizes,
    ) -> (String, RunOutput) {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        let kept = Kept::default();
        let streams = TerminalStreams {
            output: Box::new(kept.clone()),
            input: Box::new(Typed {
                seen: kept.clone(),
                steps: steps.into_iter(),
            }),
            sizes: Box::new(FromResizes::new(resizes.clone())),
        };
        let limit = Duration::from_secs(120);
        let ran = stream_in_terminal(cmd, tty, None, ("sh", "here"), limit, streams, &Cancel::new())
            .unwrap();
        resizes.close();
        (kept.text(), ran)
    }

    #[test]
    fn the_command_gets_a_controlling_terminal_of_the_asked_type_and_size() {
        let script = "tty; echo \"term=$TERM\"; stty size; [ -t 2 ] && echo err-is-tty; \
                      echo \"sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$\"; exit 3";
        let (out, ran) = terminal_run(script, &tty(33, 99), vec![], &Resizes::default());
        assert_eq!(ran.exit_code, Some(3), "{out}");
        assert!(out.contains("/dev/pts/"), "{out}");
        assert!(out.contains("term=xterm-test\r\n"), "{out}");
        assert!(out.contains("33 99\r\n"), "{out}");
        assert!(out.contains("err-is-tty"), "{out}");
        // It leads its own session: its session id is its pid.
        let ids = out.split("sid=").nth(1).unwrap();
        let (sid, pid) = ids.trim().split_once(" pid=").unwrap();
        assert_eq!(sid, pid, "{out}");
    }

    #[test]
    fn an_interrupt_typed_reaches_the_foreground_command_and_sizes_follow() {
        let resizes = Resizes::default();
        resizes.set(WinSize { rows: 7, cols: 8 });
        // The shell waits for the size to change, then `cat` echoes a line and is
        // interrupted by the Ctrl-C byte; the shell traps it and goes on.
        let script = "trap 'echo trapped' INT; while [ \"$(stty size)\" != '7 8' ]; do :; done; \
                      echo ready; cat; echo \"cat ended $?\"";
        let steps = vec![("ready", &b"hello\n"[..]), ("hello\r\nhello", &b"\x03"[..])];
        let (out, ran) = terminal_run(script, &tty(24, 80), steps, &resizes);
        assert_eq!(ran.exit_code, Some(0), "{out}");
        assert!(out.contains("cat ended 130"), "{out}");
    }
}
