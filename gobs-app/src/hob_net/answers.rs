//! What the boss makes of a network machine's answers: nothing it has not checked. The
//! hob-client of a container, qemu or host machine runs on the machine, so it may be stuck,
//! or replaced by anything that speaks the protocol; the client's own limits are not relied
//! on. Whatever the machine sends:
//!
//! - every call waits at most a deadline: the config's `[machines] answer_timeout`
//!   (each boss's, kept by its gateway: [`crate::hob_net::boss_gateway::BossGateway::answer_timeout`]), and for work with a time limit of its own (`run`'s command)
//!   that limit on top ([`Call::deadline`]); past it the call fails with an error naming the machine, the
//!   call, the deadline and how to raise it ([`wait_answer`]). A cancelled request (its
//!   client went away) stops waiting at once, so a silent machine holds no thread longer
//!   than its caller;
//! - each of `run`'s output streams is cut at [`MAX_REMOTE_OUTPUT`] bytes, with a note
//!   saying how much was dropped ([`bounded_run`]);
//! - the words of a failure are cut at [`MAX_MACHINE_ERROR`] bytes ([`bounded_error`]).
//!
//! Each operation bounds the rest of its answer where it reads it
//! ([`crate::ops::machine::MachineOp::read_reply`]).

use crate::text::floor_char_boundary;
use std::time::{Duration, Instant};

use gobs_runtime::Promise;

pub use super::wire::MAX_REMOTE_OUTPUT;
use crate::model::{Cancel, RunOutput};

/// Longest failure text from a machine the boss passes on, in bytes.
pub const MAX_MACHINE_ERROR: usize = 4096;

/// Default of `[machines] answer_timeout`.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a waiting call looks whether its client went away.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// A call to a machine, for its deadline and for what its error says. Each operation
/// makes its own ([`crate::ops::machine::MachineOp::call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The call's name on the wire.
    pub name: &'static str,
    /// Work the call does on the machine under a time limit of its own (`run`'s command).
    pub work: Option<Work>,
}

/// Work a machine does for a call under a time limit of its own, and how errors word it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// The limit (the machine stops the work then, and answers).
    pub limit: Duration,
    /// What the limit is called (`the command's time limit`).
    pub called: &'static str,
    /// What may still go on once the boss gave up (`, and the command may still be
    /// running there`).
    pub still: &'static str,
    /// How to give the work more time.
    pub raise: &'static str,
}

impl Call {
    /// A call that only waits for the machine's answer.
    pub const fn answer_only(name: &'static str) -> Call {
        Call { name, work: None }
    }

    /// How long the boss waits for the answer: `answer` (the answer timeout), plus the
    /// work's own time limit (the machine stops the work then, and answers what it did).
    pub fn deadline(self, answer: Duration) -> Duration {
        self.work.map_or(answer, |w| w.limit.saturating_add(answer))
    }

    /// The error of a machine that did not answer within `limit`; `answer` is the
    /// `answer_timeout` part of it.
    pub(crate) fn no_answer(self, machine: &str, limit: Duration, answer: Duration) -> String {
        let shown = |d: Duration| humantime::format_duration(d).to_string();
        let (made_of, still, raise) = match self.work {
            Some(w) => (
                format!(
                    "{} {} plus the config's [machines] answer_timeout {}",
                    w.called,
                    shown(w.limit),
                    shown(answer)
                ),
                w.still,
                w.raise,
            ),
            None => (
                "the config's [machines] answer_timeout".to_string(),
                "",
                "if it is only slow, raise answer_timeout in the config's [machines] table",
            ),
        };
        format!(
            "machine {machine} did not answer `{}` within {} ({made_of}); it may be overloaded, \
             stuck or hostile{still}: check it with `gobs-app machine {machine}`; {raise}",
            self.name,
            shown(limit),
        )
    }
}

/// Waits for machine `machine`'s answer to `call`, at most [`Call::deadline`] with
/// `answer` as the answer timeout, and no longer than `cancel` stays unset. A failure's
/// words are cut with [`bounded_error`]. Blocking: off the vats.
pub fn wait_answer<T: Send + 'static>(
    machine: &str,
    call: Call,
    answer: Duration,
    mut promise: Promise<T>,
    cancel: Option<&Cancel>,
) -> Result<T, String> {
    let limit = call.deadline(answer);
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        let slice = match cancel {
            Some(_) => left.min(CANCEL_CHECK),
            None => left,
        };
        match promise.wait_timeout(slice) {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => return Err(bounded_error(&crate::actors::reason::reason(&e))),
            Err(waiting) => promise = waiting,
        }
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(format!(
                "the request was cancelled (its client went away, or the daemon gave up on \
                 it), so the boss stopped waiting for machine {machine}'s answer to `{}`",
                call.name
            ));
        }
        if start.elapsed() >= limit {
            return Err(call.no_answer(machine, limit, answer));
        }
    }
}

/// `text` cut after [`MAX_MACHINE_ERROR`] bytes (at a character boundary), saying how long
/// it was.
pub fn bounded_error(text: &str) -> String {
    if text.len() <= MAX_MACHINE_ERROR {
        return text.to_string();
    }
    format!(
        "{}… [gobs-app: the machine's error was {} bytes; the boss passed on the first {}]",
        &text[..floor_char_boundary(text, MAX_MACHINE_ERROR)],
        text.len(),
        floor_char_boundary(text, MAX_MACHINE_ERROR),
    )
}

/// `out` with each of stdout and stderr cut after [`MAX_REMOTE_OUTPUT`] bytes (at a
/// character boundary); a note at the end of stderr says how much of each was dropped, and
/// `truncated` is set.
pub fn bounded_run(mut out: RunOutput) -> RunOutput {
    let mut notes = String::new();
    for (name, stream) in [("stdout", &mut out.stdout), ("stderr", &mut out.stderr)] {
        if stream.len() <= MAX_REMOTE_OUTPUT {
            continue;
        }
        let sent = stream.len();
        stream.truncate(floor_char_boundary(stream, MAX_REMOTE_OUTPUT));
        notes.push_str(&format!(
            "\n[gobs-app: the machine sent {sent} bytes of {name}; the boss passed on the \
             first {} (its limit is {MAX_REMOTE_OUTPUT} bytes)]\n",
            stream.len()
        ));
    }
    if !notes.is_empty() {
        out.stderr.push_str(&notes);
        out.truncated = true;
    }
    out
}

/// The largest character boundary of `text` at or below `index`.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn output(stdout: String, stderr: String) -> RunOutput {
        RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout,
            stderr,
            truncated: false,
        }
    }

    #[test]
    fn output_within_the_limit_passes_unchanged() {
        let out = output("x".repeat(MAX_REMOTE_OUTPUT), "err".into());
        assert_eq!(bounded_run(out.clone()), out);
    }

    #[test]
    fn each_stream_is_cut_at_the_limit_with_a_note() {
        let out = bounded_run(output("o".repeat(1_000_000), "e".repeat(1_000_000)));
        assert_eq!(out.stdout.len(), MAX_REMOTE_OUTPUT);
        assert!(out.truncated);
        let (kept, notes) = out.stderr.split_at(MAX_REMOTE_OUTPUT);
        assert!(kept.bytes().all(|b| b == b'e'));
        assert_eq!(
            notes,
            "\n[gobs-app: the machine sent 1000000 bytes of stdout; the boss passed on the \
             first 262144 (its limit is 262144 bytes)]\n\
             \n[gobs-app: the machine sent 1000000 bytes of stderr; the boss passed on the \
             first 262144 (its limit is 262144 bytes)]\n"
        );
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // "é" is two bytes: the limit falls inside one.
        let out = bounded_run(output(
            format!("a{}", "é".repeat(MAX_REMOTE_OUTPUT)),
            "".into(),
        ));
        assert_eq!(out.stdout.len(), MAX_REMOTE_OUTPUT - 1);
        assert!(
            out.stderr.contains("passed on the first 262143"),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn long_errors_are_cut_saying_how_long_they_were() {
        assert_eq!(bounded_error("short"), "short");
        let cut = bounded_error(&"x".repeat(1_000_000));
        assert!(cut.len() < MAX_MACHINE_ERROR + 200, "{}", cut.len());
        assert!(
            cut.ends_with(
                "… [gobs-app: the machine's error was 1000000 bytes; the boss passed on the \
                 first 4096]"
            ),
            "{cut}"
        );
    }

    #[test]
    fn a_silent_machine_fails_at_its_deadline_naming_it_and_the_fix() {
        let answer = Duration::from_millis(50);
        let (never, _resolver) = Promise::<u8>::pair();
        let err =
            wait_answer("m1", Call::answer_only("get-file"), answer, never, None).unwrap_err();
        assert_eq!(
            err,
            "machine m1 did not answer `get-file` within 50ms (the config's [machines] \
             answer_timeout); it may be overloaded, stuck or hostile: check it with `gobs-app \
             machine m1`; if it is only slow, raise answer_timeout in the config's [machines] \
             table"
        );
        let (never, _resolver) = Promise::<u8>::pair();
        let run = Call {
            name: "run",
            work: Some(Work {
                limit: Duration::from_millis(20),
                called: "the command's time limit",
                still: "",
                raise: "give it more with `gobs-app run --timeout DURATION`",
            }),
        };
        let err = wait_answer("m1", run, answer, never, None).unwrap_err();
        assert!(
            err.starts_with(
                "machine m1 did not answer `run` within 70ms (the command's time limit 20ms \
                 plus the config's [machines] answer_timeout 50ms)"
            ),
            "{err}"
        );
        assert!(err.contains("`gobs-app run --timeout DURATION`"), "{err}");
        let cancel = Cancel::new();
        cancel.cancel();
        let (never, _resolver) = Promise::<u8>::pair();
        let put = Call::answer_only("put-file");
        let err = wait_answer("m1", put, answer, never, Some(&cancel)).unwrap_err();
        assert!(err.starts_with("the request was cancelled"), "{err}");
    }
}
