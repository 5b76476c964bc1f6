//! The hob-client's side of a streamed `run` (`run-stream ARGV TIMEOUT SINK`, see
//! [`super::run_sink`] for the protocol): the command's output goes to the boss's sink as
//! it is read, at most [`WINDOW`] chunks a stream unanswered, so what this machine holds
//! for a slow boss is bounded whatever the boss does; standard input is asked of the sink
//! [`STDIN_WINDOW`] asks ahead of the command, so a round trip is not paid per chunk and
//! what waits here for the command is bounded too; the command is killed when the sink's
//! `watch` is broken (the boss gave up on the run, or the session was lost).
//!
//! `run-terminal ARGV TIMEOUT SINK TERM ROWS COLS` runs the command in a pseudo-terminal
//! ([`crate::providers::local::pty`]): its output goes out as `stdout`, what comes in is
//! typed into the terminal, and the sink's `size` is asked, one ask at a time, for the
//! terminal's size changes.

use std::collections::VecDeque;
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::node::{Cx, Node};
use gobs_ocapn::syrup::Value;

use super::wire;
use crate::model::Cancel;
use crate::ops::{MachineOp, Run};
use crate::providers::local::pty::{SizeSource, TerminalStreams, stream_in_terminal};
use crate::providers::local::pump::{InputSource, OutputSink, Streams};
use crate::providers::local::run::stream_command;
use crate::tty::{Tty, WinSize};

/// Chunks of one output stream sent to the boss and not yet answered (half the boss's
/// [`super::run_sink::MAX_QUEUED`]; a boss whose run's reader keeps up answers each in the
/// turn it arrives).
pub const WINDOW: usize = 8;

/// `stdin` asks sent to the boss and not yet taken by the command (at most the
/// [`super::run_sink::MAX_STDIN_ASKS`] of a boss of any release: 8).
pub const STDIN_WINDOW: usize = 8;

/// Answers `run-stream ARGV TIMEOUT SINK`, or with `terminal` `run-terminal ARGV TIMEOUT
/// SINK TERM ROWS COLS`: a promise settled once the command ended and its output was taken.
pub(super) fn answer(
    cx: &mut Cx<'_>,
    node: &Arc<OnceLock<Node>>,
    args: &[Term],
    terminal: bool,
) -> Result<Term, Term> {
    let (argv, timeout, sink, tty) = match (terminal, args) {
        (false, [argv, timeout, Term::Ref(sink)]) => (argv, timeout, sink, None),
        (true, [argv, timeout, Term::Ref(sink), term, rows, cols]) => {
            let tty = read_tty(term, rows, cols).map_err(|e| wire::text(&e))?;
            (argv, timeout, sink, Some(tty))
        }
        (false, _) => {
            return Err(wire::text(
                "run-stream takes the command, a time limit and a sink",
            ));
        }
        (true, _) => {
            return Err(wire::text(
                "run-terminal takes the command, a time limit, a sink, TERM, rows and columns",
            ));
        }
    };
    let (argv, timeout) =
        Run::read_args(&[argv.clone(), timeout.clone()]).map_err(|e| wire::text(&e))?;
    let node = node
        .get()
        .cloned()
        .ok_or_else(|| wire::text("the hob-client is still starting"))?;
    let sink = sink.clone();
    let (p, _resolver) = cx.promise();
    std::thread::spawn(move || {
        let outcome = run(&node, &sink, &argv, timeout, tty.as_ref())
            .map(|out| Run::reply_term(&out))
            .map_err(|e| wire::text(&e));
        node.post(move |core| core.settle_promise(p, outcome));
    });
    Ok(Term::local(p))
}

/// The terminal `run-terminal` asks for.
fn read_tty(term: &Term, rows: &Term, cols: &Term) -> Result<Tty, String> {
    let cells = |t: &Term| {
        t.to_value()
            .and_then(|v| v.as_int())
            .and_then(|i| u16::try_from(i).ok())
    };
    let (Some(term), Some(rows), Some(cols)) = (wire::as_string(term), cells(rows), cells(cols))
    else {
        return Err(
            "run-terminal's terminal is TERM (a string), rows and columns (numbers \
                    up to 65535)"
                .into(),
        );
    };
    let tty = Tty {
        term,
        size: WinSize { rows, cols },
    };
    tty.check()?;
    Ok(tty)
}

fn run(
    node: &Node,
    sink: &CapRef,
    argv: &[String],
    timeout: u64,
    tty: Option<&Tty>,
) -> Result<crate::model::RunOutput, String> {
    let (first, rest) = argv
        .split_first()
        .ok_or_else(|| "no command to run".to_string())?;
    let mut cmd = Command::new(first);
    cmd.args(rest);
    let cancel = Cancel::new();
    let watched = ask(node, sink, vec![Term::sym("watch")]);
    let on_watch = cancel.clone();
    std::thread::spawn(move || {
        // Broken (the boss gave up, the session is gone) or anything but "ended": stop.
        if !matches!(watched.recv(), Ok(Ok(Term::Data(Value::Bool(false))))) {
            on_watch.cancel();
        }
    });
    let stdin = from_boss(node, sink);
    let limit = Duration::from_secs(timeout.max(1));
    let place = "this machine";
    if let Some(tty) = tty {
        let streams = TerminalStreams {
            output: to_boss(node, sink, "stdout"),
            input: stdin,
            sizes: Box::new(SizesFromBoss {
                node: node.clone(),
                sink: sink.clone(),
            }),
        };
        return stream_in_terminal(cmd, tty, None, (first, place), limit, streams, &cancel);
    }
    let streams = Streams {
        stdout: to_boss(node, sink, "stdout"),
        stderr: to_boss(node, sink, "stderr"),
        stdin,
    };
    stream_command(cmd, first, place, limit, streams, &cancel)
}

/// The terminal's size changes, asked of the boss's sink one at a time.
struct SizesFromBoss {
    node: Node,
    sink: CapRef,
}

impl SizeSource for SizesFromBoss {
    fn next(&mut self) -> Option<WinSize> {
        // Broken when the run is over (or the session lost): no more changes.
        let got = answered(ask(&self.node, &self.sink, vec![Term::sym("size")])).ok()?;
        let Some(Value::List(cells)) = got.to_value() else {
            return None;
        };
        let cell = |v: &Value| v.as_int().and_then(|i| u16::try_from(i).ok());
        match cells.as_slice() {
            [rows, cols] => Some(WinSize {
                rows: cell(rows)?,
                cols: cell(cols)?,
            }),
            _ => None,
        }
    }
}

/// Output to the boss's sink `sink`, as stream `stream` (`"stdout"`), a window ahead.
pub(super) fn to_boss(node: &Node, sink: &CapRef, stream: &'static str) -> Box<dyn OutputSink> {
    Box::new(ToBoss {
        node: node.clone(),
        sink: sink.clone(),
        stream,
        unanswered: VecDeque::new(),
    })
}

/// Input asked of the boss's sink `sink`, a window ahead.
pub(super) fn from_boss(node: &Node, sink: &CapRef) -> Box<dyn InputSource> {
    Box::new(FromBoss {
        node: node.clone(),
        sink: sink.clone(),
        asked: VecDeque::new(),
        ended: false,
    })
}

/// Sends `args` to `to`; the answer comes on the receiver.
fn ask(node: &Node, to: &CapRef, args: Vec<Term>) -> Receiver<Result<Term, Term>> {
    let (tx, rx) = mpsc::channel();
    let to = to.clone();
    node.post(move |core| {
        let p = core.send(to, args);
        core.when_settled(
            p,
            Box::new(move |outcome| {
                let _ = tx.send(outcome);
            }),
        );
        // Its answer is taken once: a run of gigabytes leaves nothing behind.
        core.release(p);
    });
    rx
}

/// Waits for the answer to one of the sink's calls.
fn answered(rx: Receiver<Result<Term, Term>>) -> Result<Term, String> {
    match rx.recv() {
        Ok(Ok(term)) => Ok(term),
        Ok(Err(e)) => Err(format!("the boss ended the run's stream: {e:?}")),
        Err(_) => Err("the boss's session ended".to_string()),
    }
}

/// One output stream, to the boss's sink.
struct ToBoss {
    node: Node,
    sink: CapRef,
    stream: &'static str,
    unanswered: VecDeque<Receiver<Result<Term, Term>>>,
}

impl OutputSink for ToBoss {
    fn write(&mut self, chunk: Vec<u8>) -> Result<(), String> {
        while self.unanswered.len() >= WINDOW {
            if let Some(oldest) = self.unanswered.pop_front() {
                answered(oldest)?;
            }
        }
        let args = vec![
            Term::sym("out"),
            wire::text(self.stream),
            Term::Data(Value::Bytes(chunk)),
        ];
        self.unanswered.push_back(ask(&self.node, &self.sink, args));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        while let Some(oldest) = self.unanswered.pop_front() {
            answered(oldest)?;
        }
        Ok(())
    }
}

/// Standard input, asked of the boss's sink a window ahead; the boss answers the asks in
/// the order they were sent.
struct FromBoss {
    node: Node,
    sink: CapRef,
    /// Asks sent and not yet taken, oldest first.
    asked: VecDeque<Receiver<Result<Term, Term>>>,
    /// End of file was answered: nothing more is asked.
    ended: bool,
}

impl InputSource for FromBoss {
    fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.ended {
            return Ok(None);
        }
        let ask_next = || ask(&self.node, &self.sink, vec![Term::sym("stdin")]);
        // The oldest ask is sent first, then the window is kept full behind it.
        let oldest = self.asked.pop_front().unwrap_or_else(ask_next);
        while self.asked.len() + 1 < STDIN_WINDOW {
            self.asked.push_back(ask_next());
        }
        // The bytes are moved out of the answer, not copied (twice, through a plain value).
        match answered(oldest)? {
            Term::Data(Value::Bytes(bytes)) if bytes.is_empty() => {
                // The asks past the end are answered empty too; none is waited for.
                self.ended = true;
                self.asked.clear();
                Ok(None)
            }
            Term::Data(Value::Bytes(bytes)) => Ok(Some(bytes)),
            _ => Err("the boss answered `stdin` with something not bytes".to_string()),
        }
    }
}
