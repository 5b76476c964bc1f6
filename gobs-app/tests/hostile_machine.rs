//! A hostile machine against the boss, black-box through the built binary and its daemon:
//! a `host` machine (no root needed) whose hob-client is replaced by one of the test's own,
//! speaking the real protocol with the machine's identity and attach sturdyref, that answers
//! `run` with a megabyte of each stream, with terminal escape sequences, with a megabyte
//! of error, with output past the stream's window or a chunk past its size, with standard
//! input or a terminal's size asked past its window, or never. Each is bounded by the boss itself: output cut
//! with a note, escapes shown escaped on a terminal (and passed unchanged to a pipe or with
//! `--raw`), the error cut, a stream past its bounds ended naming the machine, and a call
//! that is never answered failed at its deadline (short here, through the config or
//! `run --timeout`), naming the machine and how to raise it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/machine_node.rs"]
mod machine_node;
#[path = "common/pty.rs"]
mod pty;

use std::fs;
use std::path::Path;
use std::process::Stdio;

use common::{gobs, ok, text, wait_for};

use gobs_app::files::archive::{ArchiveWriter, Header, Meta};
use gobs_app::files::unpack::Unpacked;
use gobs_app::hob_net::answers::{MAX_MACHINE_ERROR, MAX_REMOTE_OUTPUT};
use gobs_app::hob_net::copy_boss::copied_term;
use gobs_app::hob_net::run_sink::MAX_STDIN_ASKS;
use gobs_app::hob_net::wire;
use gobs_app::model::RunOutput;
use gobs_app::ops::{MachineOp, Run};
use gobs_ocapn::captp::Term;
use gobs_ocapn::node::{Cx, LocalObject};
use machine_node::{MachineNode, attach_as};

/// Short deadlines, so that a machine that never answers fails in seconds.
const CONFIG: &str = "default_provider = \"host\"\n\
    [providers.host]\nkind = \"host\"\nhob_listen = \"127.0.0.1:0\"\nrun_timeout = \"2s\"\n\
    [machines]\nanswer_timeout = \"2s\"\n";

/// What the hostile machine prints for `paint`: a window title, a screen clear, colours,
/// a carriage return that hides text, a C1 CSI, bytes that are not UTF-8.
const PAINT: &[u8] = b"\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m\tsafe\rEVIL\xc2\x9b6n\xff\n";
/// The same, as a terminal is shown it (the byte that is not UTF-8 became U+FFFD when the
/// boss read the output as text).
const PAINT_SHOWN: &str =
    "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred\\x1b[0m\tsafe\\rEVIL\\u009b6n\u{fffd}\n";

/// The machine's side, as a hostile machine plays it.
struct Hostile;

impl LocalObject for Hostile {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let (name, args) = wire::method(args)?;
        let answer = |stdout: &[u8], stderr: &[u8]| {
            Ok(Run::reply_term(&RunOutput {
                exit_code: Some(0),
                signal: None,
                stdout: String::from_utf8_lossy(stdout).into_owned(),
                stderr: String::from_utf8_lossy(stderr).into_owned(),
                truncated: false,
            }))
        };
        let mut never = || {
            let (promise, _resolver) = cx.promise();
            Ok(Term::local(promise))
        };
        match name.as_str() {
            // The output comes whole in the answer instead of through the run's stream.
            "run-stream" | "run-terminal" => {
                let (argv, _) = Run::read_args(&args[..2]).map_err(|e| wire::text(&e))?;
                let sink = match args.get(2) {
                    Some(Term::Ref(sink)) => sink.clone(),
                    _ => return Err(wire::text("no sink")),
                };
                match argv[0].as_str() {
                    "flood" => answer(&[b'o'; 1_000_000], &[b'e'; 1_000_000]),
                    // Output past the boss's window, none of it waited for.
                    "flood-stream" => {
                        for _ in 0..100 {
                            cx.send(&sink, out(1024));
                        }
                        Ok(Term::local(cx.promise().0))
                    }
                    "big-chunk" => {
                        cx.send(&sink, out(100_000));
                        Ok(Term::local(cx.promise().0))
                    }
                    // Standard input asked far past the boss's window, no answer waited for.
                    "flood-stdin" => {
                        for _ in 0..1000 {
                            cx.send(&sink, vec![Term::sym("stdin")]);
                        }
                        Ok(Term::local(cx.promise().0))
                    }
                    // The terminal's size asked again before the first ask's answer.
                    "flood-size" => {
                        for _ in 0..2 {
                            cx.send(&sink, vec![Term::sym("size")]);
                        }
                        Ok(Term::local(cx.promise().0))
                    }
                    "paint" => answer(PAINT, PAINT),
                    "rant" => Err(wire::text(&"x".repeat(1_000_000))),
                    _ => never(),
                }
            }
            "get-stream" => {
                let path = args.first().and_then(wire::as_string).unwrap_or_default();
                let sink = match args.get(2) {
                    Some(Term::Ref(sink)) => sink.clone(),
                    _ => return Err(wire::text("no sink")),
                };
                let stream = match path.as_str() {
                    "/bad-sum" => bad_sum(),
                    "/escape" => escaping_tree(),
                    "/big-chunk" => {
                        cx.send(&sink, out(100_000));
                        return Ok(Term::local(cx.promise().0));
                    }
                    _ => return never(),
                };
                let bytes = Term::Data(gobs_ocapn::syrup::Value::Bytes(stream));
                cx.send(&sink, vec![Term::sym("out"), wire::text("stdout"), bytes]);
                Ok(copied_term(&Unpacked {
                    files: 1,
                    bytes: 7,
                    mode: 0o644,
                    sha256: None,
                }))
            }
            // The copy's stream asked far past the boss's window, no answer waited for.
            "put-stream" => {
                let path = args.first().and_then(wire::as_string).unwrap_or_default();
                if let (Some(Term::Ref(sink)), "/flood-stdin") = (args.get(1), path.as_str()) {
                    for _ in 0..1000 {
                        cx.send(sink, vec![Term::sym("stdin")]);
                    }
                }
                Ok(Term::local(cx.promise().0))
            }
            _ => never(),
        }
    }
}

const META: Meta = Meta {
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
    mtime_nsec: 0,
};

/// A copy's stream of one file whose bytes were changed after their sha256 was taken.
fn bad_sum() -> Vec<u8> {
    let mut w = ArchiveWriter::begin(Vec::new(), 1, 7).unwrap();
    w.file("", META, 7, &mut &b"payload"[..], &mut |_| {})
        .unwrap();
    let mut stream = w.finish().unwrap();
    let at = stream.windows(7).position(|b| b == b"payload").unwrap();
    stream[at] = b'P';
    stream
}

/// A copy's stream of a tree with an entry that climbs out of it.
fn escaping_tree() -> Vec<u8> {
    let mut w = ArchiveWriter::begin(Vec::new(), 0, 0).unwrap();
    for path in ["", "../escaped"] {
        w.entry(&Header::Dir {
            path: path.into(),
            meta: META,
        })
        .unwrap();
    }
    w.finish().unwrap()
}

/// A run's stream's `out` of `len` bytes of stdout.
fn out(len: usize) -> Vec<Term> {
    let bytes = Term::Data(gobs_ocapn::syrup::Value::Bytes(vec![b'o'; len]));
    vec![Term::sym("out"), wire::text("stdout"), bytes]
}

/// A daemon whose host machine h1 is played by the hostile client: its state directory,
/// the daemon, the impostor (all stopped when dropped).
fn hostile_h1() -> (tempfile::TempDir, common::Daemon, MachineNode) {
    let (dir, daemon, real) = host::with_machine(CONFIG, "h1", &[]);
    let s = dir.path();
    real.kill();
    wait_for("h1 to be unreachable", || status(s, "h1") == "unreachable");
    let impostor = attach_as(&s.join("hosts/h1/client"), "h1", Hostile);
    wait_for("the hostile client to be h1", || {
        status(s, "h1") == "running"
    });
    (dir, daemon, impostor)
}

fn status(s: &Path, machine: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&ok(s, &["machine", machine, "--json"])).unwrap();
    json["status"].as_str().unwrap().to_string()
}

/// A failed command's `--json` error: its kind and message.
fn json_error(s: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = gobs(s, &all);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    let field = |k: &str| value["error"][k].as_str().unwrap().to_string();
    (field("kind"), field("message"))
}

/// What `gobs-app ARGS` writes to standard output when that is a terminal (a pty in raw
/// mode, so the bytes come back as written); standard error is a pipe.
fn on_terminal(s: &Path, args: &[&str]) -> (Vec<u8>, String) {
    let (master, slave) = pty::raw_pty();
    let child = common::bare()
        .arg("--state-dir")
        .arg(s)
        .args(args)
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = pty::read_until_closed(master);
    let done = child.wait_with_output().unwrap();
    (out, text(&done.stderr))
}

#[test]
fn a_hostile_machine_is_bounded_by_the_boss() {
    let (dir, daemon, _impostor) = hostile_h1();
    let s = dir.path();

    // A megabyte of each stream: each cut at the limit, saying so.
    let out = gobs(s, &["run", "h1", "--", "flood"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, vec![b'o'; MAX_REMOTE_OUTPUT]);
    let note = |name| {
        format!(
            "\n[gobs-app: the machine sent 1000000 bytes of {name}; the boss passed on the \
             first {MAX_REMOTE_OUTPUT} (its limit is {MAX_REMOTE_OUTPUT} bytes)]\n"
        )
    };
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}{}{}",
            "e".repeat(MAX_REMOTE_OUTPUT),
            note("stdout"),
            note("stderr")
        )
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(s, &["run", "h1", "--json", "--", "flood"])).unwrap();
    assert_eq!(json["truncated"], true);

    // Escape sequences: unchanged through a pipe, escaped on a terminal, unless --raw.
    let piped = gobs(s, &["run", "h1", "--", "paint"]);
    let as_text = String::from_utf8_lossy(PAINT).into_owned();
    assert_eq!(text(&piped.stdout), as_text);
    assert_eq!(text(&piped.stderr), as_text);
    let (shown, stderr) = on_terminal(s, &["run", "h1", "--", "paint"]);
    assert_eq!(text(&shown), PAINT_SHOWN);
    assert_eq!(stderr, as_text, "stderr is a pipe: unchanged");
    let (raw, _) = on_terminal(s, &["run", "--raw", "h1", "--", "paint"]);
    assert_eq!(text(&raw), as_text);

    // A megabyte of error: cut.
    let (kind, message) = json_error(s, &["run", "h1", "--", "rant"]);
    assert_eq!(kind, "provider");
    assert_eq!(
        message,
        format!(
            "cannot run the command on machine h1: {}… [gobs-app: the machine's error was \
             1000000 bytes; the boss passed on the first {MAX_MACHINE_ERROR}]",
            "x".repeat(MAX_MACHINE_ERROR)
        )
    );

    // Never an answer: failed at the deadline, and the daemon serves on.
    let (kind, message) = json_error(s, &["run", "h1", "--", "hang"]);
    assert_eq!(kind, "provider");
    assert_eq!(
        message,
        "cannot run the command on machine h1: machine h1 did not answer `run` within 4s (the \
         command's time limit 2s plus the config's [machines] answer_timeout 2s); it may be \
         overloaded, stuck or hostile, and the command may still be running there: check it \
         with `gobs-app machine h1`; if the command needs longer, give it more with `gobs-app \
         run --timeout DURATION`, or raise run_timeout in its provider's [providers.NAME] table"
    );
    // The time limit a run asks for replaces the provider's.
    let (_, message) = json_error(s, &["run", "--timeout", "1s", "h1", "--", "hang"]);
    assert!(
        message.contains("within 3s (the command's time limit 1s plus"),
        "{message}"
    );
    let (kind, message) = json_error(s, &["run", "--timeout", "0s", "h1", "--", "hang"]);
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "invalid-request",
            "run --timeout 0s is not between 1s and 30days"
        )
    );
    let (kind, message) = json_error(s, &["get-file", "h1", "/etc/hostname"]);
    assert_eq!(kind, "provider");
    assert!(
        message.contains("machine h1 did not answer `get-file` within 4s")
            && message.contains("raise run_timeout"),
        "{message}"
    );
    // A stream past its window: the boss never holds more than its window. Whether the
    // window overflows depends on whether the boss passed the first chunks on before the
    // rest arrived (on a busy machine it may keep up with all 100); either way the run
    // ends, bounded, naming the machine: the protocol broken, or no answer by the deadline.
    let (kind, message) = json_error(s, &["run", "h1", "--", "flood-stream"]);
    assert_eq!(kind, "provider");
    assert!(
        message.starts_with(
            "cannot run the command on machine h1: machine h1 broke the protocol of `run`'s \
             stream: it sent more than 16 chunks of output without waiting for them to be taken"
        ) || message.starts_with(
            "cannot run the command on machine h1: machine h1 did not answer `run` within 4s"
        ),
        "{message}"
    );
    let (_, message) = json_error(s, &["run", "h1", "--", "big-chunk"]);
    assert!(
        message.contains(
            "machine h1 broke the protocol of `run`'s stream: it sent a chunk of \
             100000 bytes (at most 65536)"
        ),
        "{message}"
    );
    let (_, message) = json_error(s, &["run", "h1", "--", "flood-stdin"]);
    assert!(
        message.contains(&format!(
            "machine h1 broke the protocol of `run`'s stream: it asked for standard input \
             more than {MAX_STDIN_ASKS} times"
        )),
        "{message}"
    );
    let answer = common::run_in_terminal(&daemon.socket, "h1", &["flood-size"]);
    assert!(
        answer.contains(
            "machine h1 broke the protocol of `run`'s stream: it asked for the terminal's \
             size again without waiting for the answer"
        ),
        "{answer}"
    );
    let local = s.join("local.txt");
    fs::write(&local, b"hi").unwrap();
    let (kind, message) = json_error(s, &["put-file", "h1", local.to_str().unwrap(), "/tmp/x"]);
    assert_eq!(kind, "provider");
    assert!(
        message.contains("did not answer `put-file` within 4s"),
        "{message}"
    );
    assert_eq!(status(s, "h1"), "running");
}

#[test]
fn a_hostile_machine_cannot_corrupt_or_escape_a_copy_or_flood_the_boss() {
    let (dir, _daemon, _impostor) = hostile_h1();
    let s = dir.path();
    let work = tempfile::tempdir().unwrap();
    let names = || {
        let mut n: Vec<_> = fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };

    // Bytes changed on the way: refused, the local file as it was, nothing beside it.
    let local = work.path().join("kept");
    fs::write(&local, b"old").unwrap();
    let (kind, message) = json_error(s, &["get-file", "h1", "/bad-sum", local.to_str().unwrap()]);
    assert_eq!(kind, "local-file");
    assert!(
        message.contains("sha256") && message.contains("changed on the way"),
        "{message}"
    );
    assert_eq!(fs::read(&local).unwrap(), b"old");
    // To standard output the bytes cannot be taken back, but the copy still fails.
    let out = gobs(s, &["get-file", "h1", "/bad-sum"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("changed on the way"),
        "{}",
        text(&out.stderr)
    );

    // A tree with an entry that climbs out of its target: refused, nothing written.
    let tree = work.path().join("tree");
    let (_, message) = json_error(
        s,
        &["get-file", "-r", "h1", "/escape", tree.to_str().unwrap()],
    );
    assert!(message.contains("escape"), "{message}");
    assert_eq!(names(), ["kept"]);

    // The boss's bounds on a copy's stream, as on a run's.
    let (kind, message) = json_error(s, &["get-file", "h1", "/big-chunk"]);
    assert_eq!(kind, "provider");
    assert!(
        message.contains(
            "machine h1 broke the protocol of `get-file`'s stream: it sent a chunk of \
             100000 bytes (at most 65536)"
        ),
        "{message}"
    );
    let (_, message) = json_error(
        s,
        &["put-file", "h1", local.to_str().unwrap(), "/flood-stdin"],
    );
    assert!(
        message.contains(&format!(
            "machine h1 broke the protocol of `put-file`'s stream: it asked for standard \
             input more than {MAX_STDIN_ASKS} times"
        )),
        "{message}"
    );
    assert_eq!(status(s, "h1"), "running");
}
