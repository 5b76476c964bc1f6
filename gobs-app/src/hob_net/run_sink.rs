//! The boss's side of a streamed `run` on a network machine: a capability the machine is
//! handed with the command (the **sink**), through which it sends the command's output and
//! asks for its standard input, and the loop that passes both on ([`Gateway::run_stream`]).
//!
//! On the hob wire: the boss sends `run-stream ARGV TIMEOUT SINK` to the machine's
//! bindings, answered like `run` (`[exit signal stdout stderr truncated]`, the streams
//! empty but for the machine's notes) once the command ended and its output was taken.
//! Meanwhile the machine sends the sink
//!
//! - `out STREAM BYTES` (`"stdout"` or `"stderr"`, at most [`CHUNK`] bytes), answered `#t`
//!   once the chunk was passed on: the machine's flow control (it keeps a window of
//!   unanswered chunks of its own choosing, `run_stream`'s in the hob-client). A chunk the
//!   run's reader has room for, with nothing before it waiting, is passed on and answered
//!   in the same turn; the others wait in the sink for the loop that passes them on;
//! - `stdin`, answered with the next bytes of standard input, empty at its end and after;
//!   the machine may ask again before an answer (a window of asks of its own choosing), and
//!   each ask gets the chunk after its elder's, so the chunks stay in order (an ask with
//!   none waiting before it, whose chunk is here, is answered in the turn it arrives);
//! - `watch`, answered `#f` when the run ended as it should and broken when the boss gave
//!   up on it (the client went away): the machine then kills the command;
//! - `size` (a run with a terminal), answered `[ROWS COLS]` when the user's terminal next
//!   changes size: the machine asks again after each answer.
//!
//! A run with a terminal (`run -t`) is `run-terminal ARGV TIMEOUT SINK TERM ROWS COLS`: the
//! command runs in a pseudo-terminal of type TERM and that size, and its output (the
//! terminal's, one stream) comes as `out "stdout" BYTES`. A hob-client of a release before
//! terminals answers it "no binding `run-terminal`", which the boss words as "recreate the
//! machine".
//!
//! The machine is not trusted to keep its window: the sink holds at most [`MAX_QUEUED`]
//! chunks not yet passed on, [`MAX_STDIN_ASKS`] `stdin` asks and one `size` ask not yet
//! answered, and answers as many `stdin` asks past the input's end; a machine that sends
//! more, a larger chunk, or anything else, ends the run with an error naming it, and one
//! that stalls or never ends is cut at the call's deadline ([`Call::deadline`]).

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gobs_ocapn::captp::{LocalRef, Term};
use gobs_ocapn::node::{Cx, LocalObject, Node};
use gobs_ocapn::syrup::Value;

use super::answers::{self, Call};
use super::gateway::Gateway;
use super::wire;
use crate::model::{Cancel, RunOutput};
use crate::ops::{MachineOp, Run};
use crate::run_io::{CHUNK, RunIo, Stream};
use crate::tty::{Resized, Resizes, Tty};

/// Chunks of output the sink holds not yet passed on; past it the machine is cut off.
pub const MAX_QUEUED: usize = 16;

/// `stdin` asks the sink holds not yet answered (twice the hob-client's window, its
/// `run_stream::STDIN_WINDOW`; 8 in releases before it was 8); past it the machine is cut
/// off.
pub const MAX_STDIN_ASKS: usize = 16;

/// How often the loop looks whether the run's client went away.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// What the sink and the loop share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Output received and not yet passed on, with the promise that answers each.
    queue: VecDeque<(Stream, Vec<u8>, LocalRef)>,
    /// The loop took a chunk off `queue` and is passing it on: a later one must wait.
    passing: bool,
    /// The machine's `stdin` asks not answered, oldest first.
    pulls: VecDeque<LocalRef>,
    /// The run's standard input, for whoever answers the asks.
    input: Input,
    /// `stdin` asks answered at once with its end.
    past_end: usize,
    /// The machine's `watch`.
    watch: Option<LocalRef>,
    /// The machine's `size` ask not answered.
    size: Option<LocalRef>,
    /// What the machine did against the protocol.
    fault: Option<String>,
    /// The machine's answer to `run-stream`.
    answer: Option<Result<Term, String>>,
    /// The run is over: the sink refuses everything.
    over: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A run's standard input, as the sink holds it.
#[derive(Default)]
enum Input {
    /// Not taken from the run's streams yet (it is, at the first ask).
    #[default]
    Untaken,
    /// Here, for an ask that comes with none waiting before it.
    Idle(Receiver<Vec<u8>>),
    /// The loop that answers the asks has it, for an ask that waited.
    Busy,
    /// Ended (or there is none): every ask is answered empty.
    Gone,
}

/// The capability a machine sends a run's output to and asks its input from.
struct Sink {
    shared: Arc<Shared>,
    /// Where the output goes, for the chunks passed on at once.
    io: RunIo,
}

/// How the sink answers one message.
enum Answer {
    /// Later: by this promise (settled by the boss, which needs no resolver object), kept
    /// with what it waits for.
    Later(LocalRef),
    /// Now, with this.
    Now(Term),
    /// With an error: the machine broke the protocol, as said.
    Fault(String),
}

impl LocalObject for Sink {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let (method, mut args) = wire::method(args)?;
        let mut state = self.shared.lock();
        if state.over {
            return Err(wire::text("this run is over"));
        }
        let mut promise = || cx.core().new_promise();
        let answer = match (method.as_str(), args.as_mut_slice()) {
            ("out", [stream, bytes]) => self.out(&mut state, stream, bytes, &mut promise),
            ("stdin", []) if state.pulls.len() >= MAX_STDIN_ASKS => Answer::Fault(format!(
                "it asked for standard input more than {MAX_STDIN_ASKS} times without waiting \
                 for the answers"
            )),
            ("stdin", []) => match self.stdin_now(&mut state) {
                // The machine's window may ask past the end, but not without bound.
                Some(bytes) if bytes.is_empty() && state.past_end >= MAX_STDIN_ASKS => {
                    Answer::Fault(format!(
                        "it asked for standard input more than {MAX_STDIN_ASKS} times after \
                         its end"
                    ))
                }
                Some(bytes) => {
                    state.past_end += usize::from(bytes.is_empty());
                    Answer::Now(Term::Data(Value::Bytes(bytes)))
                }
                None => {
                    let p = promise();
                    state.pulls.push_back(p);
                    Answer::Later(p)
                }
            },
            ("watch", []) if state.watch.is_none() => {
                let p = promise();
                state.watch = Some(p);
                Answer::Later(p)
            }
            ("size", []) if state.size.is_none() => {
                let p = promise();
                state.size = Some(p);
                Answer::Later(p)
            }
            ("size", []) => Answer::Fault(
                "it asked for the terminal's size again without waiting for the answer".into(),
            ),
            (other, _) => Answer::Fault(format!(
                "it sent `{}` to the run's stream, which takes out, stdin, size and watch (once)",
                crate::model::shown(other)
            )),
        };
        match answer {
            Answer::Later(p) => {
                self.shared.changed.notify_all();
                Ok(Term::local(p))
            }
            Answer::Now(term) => Ok(term),
            Answer::Fault(why) => {
                let said = wire::text(&why);
                state.fault.get_or_insert(why);
                self.shared.changed.notify_all();
                Err(said)
            }
        }
    }
}

impl Sink {
    /// The answer to a `stdin` ask that can be answered now: no ask waits before it and
    /// the next chunk (or the end) is here.
    fn stdin_now(&self, state: &mut State) -> Option<Vec<u8>> {
        if !state.pulls.is_empty() {
            return None;
        }
        if let Input::Untaken = state.input {
            state.input = self.io.take_stdin().map_or(Input::Gone, Input::Idle);
        }
        match &state.input {
            Input::Gone => Some(Vec::new()),
            Input::Idle(rx) => match rx.try_recv() {
                Ok(chunk) if !chunk.is_empty() => Some(chunk),
                Err(mpsc::TryRecvError::Disconnected) => {
                    state.input = Input::Gone;
                    Some(Vec::new())
                }
                // An empty chunk is no end: it is skipped, as the loop skips it.
                Ok(_) | Err(mpsc::TryRecvError::Empty) => None,
            },
            Input::Untaken | Input::Busy => None,
        }
    }

    /// `out STREAM BYTES`; `promise` makes the promise of an answer that waits.
    fn out(
        &self,
        state: &mut State,
        stream: &Term,
        bytes: &mut Term,
        promise: &mut dyn FnMut() -> LocalRef,
    ) -> Answer {
        let stream = match wire::as_string(stream).as_deref() {
            Some("stdout") => Some(Stream::Stdout),
            Some("stderr") => Some(Stream::Stderr),
            _ => None,
        };
        // Moved out of the message, not copied (twice, through a plain value).
        let bytes = match bytes {
            Term::Data(Value::Bytes(bytes)) => Some(std::mem::take(bytes)),
            _ => None,
        };
        match (stream, bytes) {
            (Some(_), Some(b)) if b.len() > CHUNK => Answer::Fault(format!(
                "it sent a chunk of {} bytes (at most {CHUNK})",
                b.len()
            )),
            _ if state.queue.len() >= MAX_QUEUED => Answer::Fault(format!(
                "it sent more than {MAX_QUEUED} chunks of output without waiting for them to \
                 be taken"
            )),
            // Nothing waits before it: passed on now if the reader has room, without
            // waking the loop.
            (Some(s), Some(b)) if state.queue.is_empty() && !state.passing => {
                match self.io.try_send(s, b) {
                    Ok(()) => Answer::Now(Term::Data(Value::Bool(true))),
                    Err(b) => Answer::Later(queue(state, s, b, promise())),
                }
            }
            (Some(s), Some(b)) => Answer::Later(queue(state, s, b, promise())),
            _ => Answer::Fault("it sent `out` without a stream name and bytes".to_string()),
        }
    }
}

/// Queues chunk `b` of `s`, answered by `p` once passed on; `p`.
fn queue(state: &mut State, s: Stream, b: Vec<u8>, p: LocalRef) -> LocalRef {
    state.queue.push_back((s, b, p));
    p
}

impl Gateway {
    /// Has machine `machine` run `run` with its streams `io`, through a sink it is handed
    /// (see the module doc), and passes its output on as it comes and its standard input
    /// as it is asked for; waits at most the call's deadline (`default_limit` is the
    /// machine's time limit for a request without one, `answer` the answer timeout, `wait`
    /// how long a session that is down may take to come back), and no longer than `cancel`
    /// stays unset. Blocking: off the vats.
    pub fn run_stream(
        &self,
        machine: &str,
        run: &Run,
        io: &RunIo,
        default_limit: Duration,
        waits: (Duration, Duration),
        cancel: &Cancel,
    ) -> Result<RunOutput, String> {
        let mut message = crate::ops::MachineCall::message(run, default_limit);
        message[0] = Term::sym(RUN_STREAM);
        if run.tty.is_some() {
            message[0] = Term::sym(RUN_TERMINAL);
        }
        // Named `run` in errors: what the user asked for.
        let call: Call = run.call(default_limit);
        let message = (message, run.tty.as_ref());
        let answer = self.stream_call(machine, message, call, io, waits, cancel)?;
        Run::read_reply(&answer)
    }

    /// Sends `message` to machine `machine` with a sink on the end (see the module doc),
    /// through which it sends output to `io` and asks for `io`'s standard input (taken at
    /// its first ask: a machine that refuses the message leaves it to the caller); answers
    /// the machine's answer to `message`, within `call`'s deadline. With a terminal `tty`,
    /// its type and size follow the sink, and the machine's asks for `io`'s terminal size
    /// are answered. `run-stream`, `run-terminal`, and the streams of copies
    /// ([`super::copy_boss`]), go through it. Blocking: off the vats.
    pub fn stream_call(
        &self,
        machine: &str,
        (mut message, tty): (Vec<Term>, Option<&Tty>),
        call: Call,
        io: &RunIo,
        (wait, answer): (Duration, Duration),
        cancel: &Cancel,
    ) -> Result<Term, String> {
        let node = self.inner.node.clone();
        let shared = Arc::new(Shared::default());
        let sink = Sink {
            shared: shared.clone(),
            io: io.clone(),
        };
        let sink = spawn(&node, sink)?;
        message.push(Term::local(sink));
        if let Some(tty) = tty {
            message.extend([
                wire::text(&tty.term),
                Term::Data(Value::from(i64::from(tty.size.rows))),
                Term::Data(Value::from(i64::from(tty.size.cols))),
            ]);
            let feeder = (shared.clone(), node.clone(), io.resizes.clone());
            std::thread::spawn(move || feed_sizes(&feeder.0, &feeder.1, &feeder.2));
        }
        let limit = call.deadline(answer);
        let asked = self.ask(machine, message, wait);
        let waiter = shared.clone();
        std::thread::spawn(move || {
            // Stops waiting once the run is over, answered or not.
            let mut asked = asked;
            let outcome = loop {
                match asked.wait_timeout(CANCEL_CHECK) {
                    Ok(Ok(term)) => break Ok(term),
                    Ok(Err(e)) => {
                        break Err(answers::bounded_error(&crate::actors::reason::reason(&e)));
                    }
                    Err(_) if waiter.lock().over => return,
                    Err(pending) => asked = pending,
                }
            };
            waiter.lock().answer = Some(outcome);
            waiter.changed.notify_all();
        });
        let feeder = (shared.clone(), node.clone(), io.clone());
        std::thread::spawn(move || feed_stdin(&feeder.0, &feeder.1, &feeder.2));
        let ended = pass_output(&shared, &node, io, Instant::now() + limit, cancel);
        let mut state = shared.lock();
        state.over = true;
        // Let go of: a writer of standard input waiting for room sees the end.
        state.input = Input::Gone;
        let (why, watch) = match &ended {
            Ok(_) => (None, Ok(Term::Data(Value::Bool(false)))),
            Err(e) => (Some(e.to_string()), Err(wire::text(&e.to_string()))),
        };
        let mut settle = vec![];
        settle.extend(state.watch.take().map(|w| (w, watch)));
        let over = || Err(wire::text(why.as_deref().unwrap_or("the run ended")));
        settle.extend(state.pulls.drain(..).map(|p| (p, over())));
        settle.extend(state.size.take().map(|p| (p, over())));
        settle.extend(state.queue.drain(..).map(|(_, _, p)| (p, over())));
        drop(state);
        shared.changed.notify_all();
        node.post(move |core| {
            for (p, outcome) in settle {
                settle_once(core, p, outcome);
            }
        });
        let name = call.name;
        match ended {
            Ok(term) => Ok(term),
            Err(Ended::Fault(why)) => Err(format!(
                "machine {machine} broke the protocol of `{name}`'s stream: {why}; the \
                 {name} was stopped there (the machine may be hostile or run another \
                 gobs-app: check it with `gobs-app machine {machine}`)"
            )),
            Err(Ended::Failed(why)) => Err(why),
            Err(Ended::Cancelled) => Err(format!(
                "the request was cancelled (its client went away), so the boss told machine \
                 {machine} to stop the {name}"
            )),
            Err(Ended::Late) => Err(call.no_answer(machine, limit, answer)),
        }
    }
}

/// The method a streamed run is on the hob wire.
pub const RUN_STREAM: &str = "run-stream";

/// The method a streamed run with a terminal is on the hob wire.
pub const RUN_TERMINAL: &str = "run-terminal";

/// Why a streamed run ended without the machine's answer.
#[derive(Debug, Clone)]
enum Ended {
    Fault(String),
    Failed(String),
    Cancelled,
    Late,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Fault(why) | Ended::Failed(why) => f.write_str(why),
            Ended::Cancelled => f.write_str("the run's client went away"),
            Ended::Late => f.write_str("the run took longer than its deadline"),
        }
    }
}

/// Passes the machine's output on to `io` until its answer, a fault, `cancel` or
/// `deadline`.
fn pass_output(
    shared: &Shared,
    node: &Node,
    io: &RunIo,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Term, Ended> {
    let mut state = shared.lock();
    loop {
        if let Some(why) = state.fault.take() {
            return Err(Ended::Fault(why));
        }
        if let Some((stream, bytes, p)) = state.queue.pop_front() {
            state.passing = true;
            drop(state);
            if io.send(stream, bytes).is_err() {
                return Err(Ended::Cancelled);
            }
            node.post(move |core| settle_once(core, p, Ok(Term::Data(Value::Bool(true)))));
            state = shared.lock();
            state.passing = false;
            continue;
        }
        match state.answer.take() {
            Some(Ok(term)) => return Ok(term),
            Some(Err(why)) => return Err(Ended::Failed(why)),
            None => {}
        }
        if cancel.is_cancelled() {
            return Err(Ended::Cancelled);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Ended::Late);
        }
        state = shared
            .changed
            .wait_timeout(state, left.min(CANCEL_CHECK))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// Answers the machine's `stdin` asks in the order they came from `io`'s standard input
/// (taken at the first ask), one chunk each, then empty bytes at its end and to every ask
/// after it (the machine's window may have asked past the end); stops when the run is over.
fn feed_stdin(shared: &Shared, node: &Node, io: &RunIo) {
    loop {
        // The ask and the input are taken together: an ask that comes meanwhile finds the
        // input busy and waits its turn, so each ask gets the chunk after its elder's.
        let taken = next_ask(shared, |state| {
            let pull = state.pulls.pop_front()?;
            Some((pull, std::mem::replace(&mut state.input, Input::Busy)))
        });
        let Some((pull, input)) = taken else {
            return;
        };
        let source = match input {
            Input::Untaken => io.take_stdin(),
            Input::Idle(rx) => Some(rx),
            Input::Busy | Input::Gone => None,
        };
        let chunk = loop {
            let Some(rx) = &source else {
                break Vec::new();
            };
            match rx.recv_timeout(CANCEL_CHECK) {
                Ok(chunk) if chunk.is_empty() => {}
                Ok(chunk) => break chunk,
                Err(mpsc::RecvTimeoutError::Disconnected) => break Vec::new(),
                Err(mpsc::RecvTimeoutError::Timeout) if shared.lock().over => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        };
        let ended = chunk.is_empty();
        // Posted before the input is let go of, so the asks are settled in the order they
        // came.
        node.post(move |core| settle_once(core, pull, Ok(Term::Data(Value::Bytes(chunk)))));
        let mut state = shared.lock();
        if !state.over {
            state.input = match source {
                Some(rx) if !ended => Input::Idle(rx),
                _ => Input::Gone,
            };
        }
    }
}

/// Answers the machine's `size` asks with the user's terminal's sizes as they change, the
/// latest one each; stops when the run is over.
fn feed_sizes(shared: &Shared, node: &Node, resizes: &Resizes) {
    let mut seen = 0;
    loop {
        let size = match resizes.next_after(seen, CANCEL_CHECK) {
            Resized::To(count, size) => {
                seen = count;
                size
            }
            Resized::Unchanged if !shared.lock().over => continue,
            Resized::Unchanged | Resized::Closed => return,
        };
        let Some(ask) = next_ask(shared, |state| state.size.take()) else {
            return;
        };
        let answer = Term::List(vec![
            Term::Data(Value::from(i64::from(size.rows))),
            Term::Data(Value::from(i64::from(size.cols))),
        ]);
        node.post(move |core| settle_once(core, ask, Ok(answer)));
    }
}

/// Waits for the machine's next ask that `take` takes; `None` once the run is over.
fn next_ask<T>(shared: &Shared, mut take: impl FnMut(&mut State) -> Option<T>) -> Option<T> {
    let mut state = shared.lock();
    loop {
        if state.over {
            return None;
        }
        if let Some(p) = take(&mut state) {
            return Some(p);
        }
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// Settles `p`, whose outcome went to the machine's answer, and forgets it: a run of
/// gigabytes leaves nothing behind.
fn settle_once(core: &mut gobs_ocapn::node::Core, p: LocalRef, outcome: Result<Term, Term>) {
    core.settle_promise(p, outcome);
    core.release(p);
}

/// Hosts `obj` on `node`; its reference.
fn spawn(node: &Node, obj: impl LocalObject) -> Result<LocalRef, String> {
    let (tx, rx) = mpsc::channel();
    node.post(move |core| {
        let _ = tx.send(core.spawn(Box::new(obj)));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the boss's OCapN node did not take the run's stream (it stopped)".into())
}
