//! The hob-client's side of a streamed `run` (`run-stream ARGV TIMEOUT SINK`, see
//! [`super::run_sink`] for the protocol): the command's output goes to the boss's sink as
//! it is read, at most [`WINDOW`] chunks a stream unanswered, so what this machine holds
//! for a slow boss is bounded whatever the boss does; standard input is asked of the sink
//! [`STDIN_WINDOW`] asks ahead of the command, so a round trip is not paid per chunk and
//! what waits here for the command is bounded too; the command is killed when the sink's
//! `watch` is broken (the boss gave up on the run, or the session was lost).

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
use crate::providers::local::pump::{InputSource, OutputSink, Streams};
use crate::providers::local::run::stream_command;

/// Chunks of one output stream sent to the boss and not yet answered.
pub const WINDOW: usize = 4;

/// `stdin` asks sent to the boss and not yet taken by the command (at most the boss's
/// [`super::run_sink::MAX_STDIN_ASKS`]).
pub const STDIN_WINDOW: usize = 4;

/// Answers `run-stream ARGV TIMEOUT SINK`: a promise settled once the command ended and
/// its output was taken.
pub(super) fn answer(
    cx: &mut Cx<'_>,
    node: &Arc<OnceLock<Node>>,
    args: &[Term],
) -> Result<Term, Term> {
    let refused = || wire::text("run-stream takes the command, a time limit and a sink");
    let [argv, timeout, Term::Ref(sink)] = args else {
        return Err(refused());
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
        let outcome = run(&node, &sink, &argv, timeout)
            .map(|out| Run::reply_term(&out))
            .map_err(|e| wire::text(&e));
        node.post(move |core| core.settle_promise(p, outcome));
    });
    Ok(Term::local(p))
}

fn run(
    node: &Node,
    sink: &CapRef,
    argv: &[String],
    timeout: u64,
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
    let out = |stream: &'static str| {
        Box::new(ToBoss {
            node: node.clone(),
            sink: sink.clone(),
            stream,
            unanswered: VecDeque::new(),
        }) as Box<dyn OutputSink>
    };
    let streams = Streams {
        stdout: out("stdout"),
        stderr: out("stderr"),
        stdin: Box::new(FromBoss {
            node: node.clone(),
            sink: sink.clone(),
            asked: VecDeque::new(),
            ended: false,
        }),
    };
    let limit = Duration::from_secs(timeout.max(1));
    stream_command(cmd, first, "this machine", limit, streams, &cancel)
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
