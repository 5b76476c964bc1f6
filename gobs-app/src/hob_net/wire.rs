//! What the boss and a machine's hob-client say to each other over OCapN: the messages
//! (a method symbol first, then Syrup arguments), their answers, and the bounds on them.
//!
//! Three kinds of object take part:
//!
//! - the boss's **registration** object (one per machine, reached by the one-time
//!   registration sturdyref): `register BINDINGS` → `[machine attach-swiss credential]`;
//! - the boss's **attach** object (one per machine, its sturdyref handed back by
//!   `register`): `attach BINDINGS CREDENTIAL` → `[machine next-credential]` (after a
//!   reconnect; see [`super::credential`]), `confirm CREDENTIAL` once the client stored
//!   the next one, `ping` → `pong`;
//! - the hob-client's **bindings** object: `binding-names`, `status`, `run ARGV TIMEOUT`,
//!   `put-file PATH BYTES MODE`, `get-file PATH`.
//!
//! Every failure is a string that says what happened and what to do.

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;

use crate::model::RunOutput;

/// Bytes of stdout and of stderr a remote `run` keeps (what comes after is counted and
/// dropped, with a note). Below the session's 1 MiB string limit, so an answer always fits.
/// The hob-client cuts there, and the boss cuts again whatever a machine sends
/// ([`super::answers::bounded_run`]).
pub const MAX_REMOTE_OUTPUT: usize = 256 * 1024;

/// Largest file `put-file` and `get-file` carry in one message.
pub const MAX_FILE: usize = 512 * 1024;

/// The names of the bindings a hob-client exposes.
pub const BINDING_NAMES: &[&str] = &["status", "run", "put-file", "get-file"];

/// A method call: the symbol, then the arguments.
pub fn call(method: &str, args: Vec<Term>) -> Vec<Term> {
    let mut all = vec![Term::sym(method)];
    all.extend(args);
    all
}

/// A string term.
pub fn text(s: &str) -> Term {
    Term::str(s)
}

/// Splits a message into its method name and arguments.
pub fn method(args: Vec<Term>) -> Result<(String, Vec<Term>), Term> {
    let mut it = args.into_iter();
    let name = it
        .next()
        .and_then(|t| t.as_symbol().map(str::to_owned))
        .ok_or_else(|| text("a message here starts with a method name (a symbol)"))?;
    Ok((name, it.collect()))
}

/// The string in `t`, if it is one.
pub fn as_string(t: &Term) -> Option<String> {
    match t.to_value()? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// The words of a failure: the string a broken promise carries, or a description.
pub fn failure(t: &Term) -> String {
    match t.to_value() {
        Some(Value::String(s)) => s,
        Some(other) => format!("{other:?}"),
        None => "broken with a reference".into(),
    }
}

/// `attach`'s arguments: the client's bindings and its credential (none in state from
/// before rotation).
pub fn attach_args(bindings: Term, credential: Option<&[u8]>) -> Vec<Term> {
    let credential = credential.map_or(Value::Bool(false), |c| Value::Bytes(c.to_vec()));
    call("attach", vec![bindings, Term::Data(credential)])
}

/// Reads `attach`'s arguments back: the bindings and the credential, if one was given.
pub fn parse_attach_args(args: &[Term]) -> Result<(Term, Option<Vec<u8>>), String> {
    let usage = "attach takes the hob-client's bindings and its attach credential";
    match args {
        [bindings] => Ok((bindings.clone(), None)),
        [bindings, credential] => match credential.to_value() {
            Some(Value::Bytes(c)) => Ok((bindings.clone(), Some(c))),
            Some(Value::Bool(false)) => Ok((bindings.clone(), None)),
            _ => Err(usage.into()),
        },
        _ => Err(usage.into()),
    }
}

/// `attach`'s answer: the machine's name and the next credential.
pub fn attached(machine: &str, next: Vec<u8>) -> Term {
    Term::List(vec![text(machine), Term::Data(Value::Bytes(next))])
}

/// Reads `attach`'s answer back: the machine's name and the next credential (none from a
/// boss from before rotation, which answers the name alone).
pub fn parse_attached(t: &Term) -> Result<(String, Option<Vec<u8>>), String> {
    match t.to_value() {
        Some(Value::String(machine)) => Ok((machine, None)),
        Some(Value::List(parts)) => match parts.as_slice() {
            [Value::String(machine), Value::Bytes(next)] => {
                Ok((machine.clone(), Some(next.clone())))
            }
            _ => Err(format!(
                "the boss answered attach with {parts:?}, not [machine credential]"
            )),
        },
        _ => Err(format!(
            "the boss answered attach with {t:?}, not [machine credential]"
        )),
    }
}

/// `run`'s arguments: the command and its time limit in seconds.
pub fn run_args(argv: &[String], timeout_secs: u64) -> Vec<Term> {
    call(
        "run",
        vec![
            Term::List(argv.iter().map(|a| text(a)).collect()),
            Term::Data(Value::from(timeout_secs as i64)),
        ],
    )
}

/// Reads `run`'s arguments back.
pub fn parse_run_args(args: &[Term]) -> Result<(Vec<String>, u64), String> {
    let [argv, timeout] = args else {
        return Err("run takes the command (a list of strings) and a time limit in seconds".into());
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

/// A [`RunOutput`] as `run` answers it: `[exit signal stdout stderr truncated]`, with -1
/// for a missing exit code or signal.
pub fn run_output_term(out: &RunOutput) -> Term {
    Term::List(vec![
        Term::Data(Value::from(i64::from(out.exit_code.unwrap_or(-1)))),
        Term::Data(Value::from(i64::from(out.signal.unwrap_or(-1)))),
        Term::Data(Value::Bytes(out.stdout.clone().into_bytes())),
        Term::Data(Value::Bytes(out.stderr.clone().into_bytes())),
        Term::Data(Value::Bool(out.truncated)),
    ])
}

/// Reads `run`'s answer back.
pub fn parse_run_output(t: &Term) -> Result<RunOutput, String> {
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
    Ok(RunOutput {
        exit_code: code(exit)?,
        signal: code(signal)?,
        stdout: bytes(stdout)?,
        stderr: bytes(stderr)?,
        truncated: *truncated,
    })
}

/// `put-file`'s arguments: where the file goes, its bytes and its permission bits.
pub fn put_file_args(path: &str, content: &[u8], mode: u32) -> Vec<Term> {
    call(
        "put-file",
        vec![
            text(path),
            Term::Data(Value::Bytes(content.to_vec())),
            Term::Data(Value::from(i64::from(mode))),
        ],
    )
}

/// Reads `put-file`'s arguments back: the path, the bytes (at most [`MAX_FILE`]) and the
/// mode (at most `0o7777`).
pub fn parse_put_file_args(args: &[Term]) -> Result<(String, Vec<u8>, u32), String> {
    let usage = "put-file takes a path, the bytes and a mode (e.g. 420 for 0644)";
    let [path, bytes, mode] = args else {
        return Err(usage.into());
    };
    let path = as_string(path).ok_or(usage)?;
    let bytes = match bytes.to_value() {
        Some(Value::Bytes(b)) => b,
        _ => return Err(usage.into()),
    };
    let mode = mode
        .to_value()
        .and_then(|v| v.as_int())
        .and_then(|m| u32::try_from(m).ok())
        .filter(|m| *m <= 0o7777)
        .ok_or(usage)?;
    if bytes.len() > MAX_FILE {
        return Err(format!(
            "put-file carries at most {MAX_FILE} bytes; {path} would be {}",
            bytes.len()
        ));
    }
    Ok((path, bytes, mode))
}

/// `get-file`'s arguments: the path of the file to read.
pub fn get_file_args(path: &str) -> Vec<Term> {
    call("get-file", vec![text(path)])
}

/// Reads `get-file`'s answer back: the file's bytes.
pub fn parse_file_content(t: &Term) -> Result<Vec<u8>, String> {
    match t.to_value() {
        Some(Value::Bytes(b)) if b.len() <= MAX_FILE => Ok(b),
        Some(Value::Bytes(b)) => Err(format!(
            "the machine answered get-file with {} bytes, more than the {MAX_FILE} it may send",
            b.len()
        )),
        _ => Err("the machine's answer to get-file is not the file's bytes".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn run_arguments_and_answers_round_trip() {
        let argv = vec!["echo".to_string(), "hi there".to_string()];
        let (_, args) = method(run_args(&argv, 30)).unwrap();
        assert_eq!(parse_run_args(&args).unwrap(), (argv, 30));
        let out = RunOutput {
            exit_code: Some(3),
            signal: None,
            stdout: "out".into(),
            stderr: "err".into(),
            truncated: true,
        };
        assert_eq!(parse_run_output(&run_output_term(&out)).unwrap(), out);
    }

    #[test]
    fn file_arguments_and_answers_round_trip_and_are_bounded() {
        let all: Vec<u8> = (0..=255).collect();
        let (name, args) = method(put_file_args("/tmp/x", &all, 0o640)).unwrap();
        assert_eq!(name, "put-file");
        assert_eq!(
            parse_put_file_args(&args).unwrap(),
            ("/tmp/x".to_string(), all.clone(), 0o640)
        );
        let (name, args) = method(get_file_args("/tmp/x")).unwrap();
        assert_eq!(
            (name.as_str(), as_string(&args[0]).unwrap()),
            ("get-file", "/tmp/x".into())
        );
        let answer = Term::Data(Value::Bytes(all.clone()));
        assert_eq!(parse_file_content(&answer).unwrap(), all);
        let (_, big) = method(put_file_args("/tmp/x", &vec![0; MAX_FILE + 1], 0o600)).unwrap();
        let err = parse_put_file_args(&big).unwrap_err();
        assert!(err.contains("at most 524288 bytes"), "{err}");
        let (_, bad_mode) = method(put_file_args("/tmp/x", b"", 0o10000)).unwrap();
        assert!(parse_put_file_args(&bad_mode).unwrap_err().contains("mode"));
        assert!(parse_file_content(&text("no")).is_err());
    }

    #[test]
    fn malformed_run_messages_are_refused_saying_what_is_expected() {
        let err = parse_run_args(&[text("ls")]).unwrap_err();
        assert!(err.contains("list of strings"), "{err}");
        let err = parse_run_args(&[Term::List(vec![]), Term::Data(Value::from(1i64))]).unwrap_err();
        assert!(err.contains("needs a command"), "{err}");
        let err = parse_run_output(&text("nope")).unwrap_err();
        assert!(err.contains("[exit signal"), "{err}");
        assert!(method(vec![text("not a symbol")]).is_err());
    }
}
