//! `run`: a command run on a machine, its output passed on as it is produced and its
//! standard input fed to it, answered with how it ended.
//!
//! Whoever shows the output gives the request its streams ([`Run::io`], [`crate::run_io`]);
//! a request without them (`--json`, an older client) gets the whole output in the answer,
//! each stream cut at [`crate::model::MAX_RUN_OUTPUT`] bytes with a note.
//!
//! On the hob wire the boss sends `run-stream ARGV TIMEOUT SINK` (the sink: a capability
//! the machine streams through, [`crate::hob_net::run_sink`]); older bosses send `run ARGV
//! TIMEOUT` (the command as a list of strings, its time limit in seconds), which the
//! hob-client still answers with the output captured. Both are answered
//! `[exit signal stdout stderr truncated]`, with -1 for a missing exit code or signal. The
//! boss cuts each stream of an answer at [`answers::MAX_REMOTE_OUTPUT`] bytes whatever the
//! machine sends ([`answers::bounded_run`]) and waits at most the command's time limit plus
//! the answer timeout.

use std::time::Duration;

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;
use serde::{Deserialize, Serialize};

use super::machine::MachineOp;
use crate::config::human::HumanDuration;
use crate::hob_net::answers::{self, Call, Work};
use crate::hob_net::wire::{as_string, text};
use crate::model::{BackendError, MachineName, RunOutput};
use crate::run_io::RunIo;
use crate::tty::Tty;

/// Longest `run --timeout`.
pub const MAX_RUN_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

// The command line's help for `run` is its entry's in the list of operations; the fields'
// doc comments are its arguments' help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The machine's name
    pub name: MachineName,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// Kill the command after this long, e.g. "90s" or "2h" (at most 30 days)
    /// [default: its provider's run_timeout]
    #[arg(long, value_name = "DURATION")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Write the command's output to a terminal as it is, escape sequences included
    /// (by default a terminal is shown them escaped, as `\x1b`; pipes always get the
    /// bytes unchanged)
    #[arg(long)]
    #[serde(skip)]
    pub raw: bool,
    /// Asks the daemon for the output as it is produced, in frames, and to take standard
    /// input in frames ([`crate::daemon::stream`]); the command line sets it. Without it
    /// the answer is the whole output at the end, cut at its bound.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Give the command a terminal on the machine, as `ssh -t` does: this terminal is put
    /// in raw mode (Ctrl-C goes to the command), its size and size changes follow, and
    /// output passes unescaped. Needs standard input and output to be a terminal
    #[arg(short = 't', long = "tty")]
    #[serde(skip)]
    pub terminal: bool,
    /// The terminal the command gets on the machine ([`crate::tty`]); the command line sets
    /// it from `-t`. Only streamed runs carry one.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<Tty>,
    /// The run's streams inside this process, when its output is shown as it comes
    /// ([`crate::run_io`]); set by whoever shows it, never sent.
    #[arg(skip)]
    #[serde(skip)]
    pub io: Option<RunIo>,
}

/// What `shell` runs: the machine's login shell, `$SHELL` there or else `/bin/sh`.
pub const LOGIN_SHELL: [&str; 3] = ["/bin/sh", "-c", "exec \"${SHELL:-/bin/sh}\" -l"];

impl Run {
    /// `shell NAME`: [`LOGIN_SHELL`] on machine `name` in a terminal, for at most `timeout`.
    pub fn login_shell(name: MachineName, timeout: Option<HumanDuration>) -> Run {
        Run {
            name,
            command: LOGIN_SHELL.iter().map(|w| w.to_string()).collect(),
            timeout,
            raw: false,
            stream: false,
            terminal: true,
            tty: None,
            io: None,
        }
    }

    /// The command's time limit in whole seconds (at least one): the request's, else
    /// `default`.
    fn limit_secs(&self, default: Duration) -> u64 {
        self.timeout.map_or(default, |t| t.0).as_secs().max(1)
    }
}

impl MachineOp for Run {
    const NAME: &'static str = "run";
    type Args = (Vec<String>, u64);
    type Reply = RunOutput;
    type Answer = RunOutput;

    fn machine(&self) -> &MachineName {
        &self.name
    }

    fn check(&self) -> Result<(), BackendError> {
        if self.command.is_empty() {
            return Err(BackendError::invalid(
                "no command to run; write it after `--`: gobs-app run NAME -- CMD [ARGS...]",
            ));
        }
        if let Some(tty) = &self.tty {
            tty.check().map_err(BackendError::invalid)?;
        }
        if let Some(t) = self
            .time_limit()
            .filter(|t| t.is_zero() || *t > MAX_RUN_TIMEOUT)
        {
            return Err(BackendError::invalid(format!(
                "run --timeout {} is not between 1s and {}",
                humantime::format_duration(t),
                humantime::format_duration(MAX_RUN_TIMEOUT)
            )));
        }
        Ok(())
    }

    fn time_limit(&self) -> Option<Duration> {
        self.timeout.map(|t| t.0)
    }

    fn call(&self, default_limit: Duration) -> Call {
        Call {
            name: Self::NAME,
            work: Some(Work {
                limit: Duration::from_secs(self.limit_secs(default_limit)),
                called: "the command's time limit",
                still: ", and the command may still be running there",
                raise: "if the command needs longer, give it more with `gobs-app run --timeout \
                        DURATION`, or raise run_timeout in its provider's [providers.NAME] table",
            }),
        }
    }

    fn args(&self, default_limit: Duration) -> Vec<Term> {
        let secs = self.limit_secs(default_limit);
        vec![
            Term::List(self.command.iter().map(|a| text(a)).collect()),
            Term::Data(Value::from(i64::try_from(secs).unwrap_or(i64::MAX))),
        ]
    }

    fn read_args(args: &[Term]) -> Result<(Vec<String>, u64), String> {
        let [argv, timeout] = args else {
            return Err(
                "run takes the command (a list of strings) and a time limit in seconds".into(),
            );
        };
        let Term::List(words) = argv else {
            return Err("run's command is a list of strings".into());
        };
        let argv = words
            .iter()
            .map(|w| as_string(w).ok_or_else(|| "run's command is a list of strings".to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if argv.is_empty() {
            return Err("run needs a command".into());
        }
        let timeout = timeout
            .to_value()
            .and_then(|v| v.as_int())
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| "run's time limit is a number of seconds".to_string())?;
        Ok((argv, timeout))
    }

    fn reply_term(out: &RunOutput) -> Term {
        Term::List(vec![
            Term::Data(Value::from(i64::from(out.exit_code.unwrap_or(-1)))),
            Term::Data(Value::from(i64::from(out.signal.unwrap_or(-1)))),
            Term::Data(Value::Bytes(out.stdout.clone().into_bytes())),
            Term::Data(Value::Bytes(out.stderr.clone().into_bytes())),
            Term::Data(Value::Bool(out.truncated)),
        ])
    }

    fn read_reply(t: &Term) -> Result<RunOutput, String> {
        let bad = || "the machine's answer to run is not [exit signal stdout stderr truncated]";
        let Some(Value::List(parts)) = t.to_value() else {
            return Err(bad().into());
        };
        let [exit, signal, stdout, stderr, truncated] = parts.as_slice() else {
            return Err(bad().into());
        };
        let code = |v: &Value| {
            v.as_int()
                .and_then(|i| i32::try_from(i).ok())
                .map(|i| (i >= 0).then_some(i))
                .ok_or_else(bad)
        };
        let bytes = |v: &Value| {
            v.as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .ok_or_else(bad)
        };
        let Value::Bool(truncated) = truncated else {
            return Err(bad().into());
        };
        Ok(answers::bounded_run(RunOutput {
            exit_code: code(exit)?,
            signal: code(signal)?,
            stdout: bytes(stdout)?,
            stderr: bytes(stderr)?,
            truncated: *truncated,
        }))
    }

    fn answer(&self, reply: RunOutput) -> RunOutput {
        reply
    }

    fn failed(&self) -> String {
        format!("cannot run the command on machine {}", self.name)
    }

    fn when_lost(&self) -> String {
        let output = match self.stream {
            true => "the output shown is all that came back, and its exit status is lost",
            false => "its output is lost",
        };
        format!(
            "gobs-app cannot know whether the command ran on machine {}, or how far it got \
             ({output}); check on the machine before running it again",
            self.name
        )
    }

    /// Answers as if the command had printed itself.
    fn pretend(&self) -> Result<RunOutput, String> {
        let line = shlex::try_join(self.command.iter().map(String::as_str))
            .map_err(|e| format!("cannot show the command: {e}"))?;
        Ok(RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: format!("dummy machine {} ran: {line}\n", self.name),
            stderr: String::new(),
            truncated: false,
        })
    }

    fn shown(&self) -> Vec<String> {
        self.command.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::hob_net::wire::method;

    fn run(command: &[&str], timeout: Option<Duration>) -> Run {
        Run {
            name: "m1".parse().unwrap(),
            command: command.iter().map(|s| s.to_string()).collect(),
            timeout: timeout.map(HumanDuration),
            raw: false,
            stream: false,
            terminal: false,
            tty: None,
            io: None,
        }
    }

    #[test]
    fn arguments_and_answers_round_trip() {
        let op = run(&["echo", "hi there"], Some(Duration::from_secs(30)));
        let (name, args) = method(crate::ops::MachineCall::message(
            &op,
            Duration::from_secs(5),
        ))
        .unwrap();
        assert_eq!(name, "run");
        assert_eq!(Run::read_args(&args).unwrap(), (op.command.clone(), 30));
        let out = RunOutput {
            exit_code: Some(3),
            signal: None,
            stdout: "out".into(),
            stderr: "err".into(),
            truncated: true,
        };
        assert_eq!(Run::read_reply(&Run::reply_term(&out)).unwrap(), out);
    }

    #[test]
    fn the_machine_default_applies_only_when_the_request_gives_no_limit() {
        let asked = run(&["true"], Some(Duration::from_secs(7)));
        let given = run(&["true"], None);
        let default = Duration::from_secs(90);
        assert_eq!(Run::read_args(&asked.args(default)).unwrap().1, 7);
        assert_eq!(Run::read_args(&given.args(default)).unwrap().1, 90);
        let deadline = |op: &Run| op.call(default).work.unwrap().limit;
        assert_eq!(deadline(&given), default);
    }

    #[test]
    fn malformed_messages_are_refused_saying_what_is_expected() {
        let err = Run::read_args(&[text("ls")]).unwrap_err();
        assert!(err.contains("list of strings"), "{err}");
        let err = Run::read_args(&[Term::List(vec![]), Term::Data(Value::from(1i64))]).unwrap_err();
        assert!(err.contains("needs a command"), "{err}");
        let err = Run::read_reply(&text("nope")).unwrap_err();
        assert!(err.contains("[exit signal"), "{err}");
    }

    #[test]
    fn empty_commands_and_limits_out_of_range_are_refused_before_sending() {
        assert!(run(&[], None).check().is_err());
        assert!(run(&["ls"], Some(Duration::ZERO)).check().is_err());
        let err = run(&["ls"], Some(MAX_RUN_TIMEOUT * 2)).check().unwrap_err();
        assert!(err.message.contains("not between 1s and 30days"), "{err}");
        assert!(run(&["ls"], Some(MAX_RUN_TIMEOUT)).check().is_ok());
    }
}
