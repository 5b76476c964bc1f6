//! The bank example (`examples/bank.rs`) as two processes: the auditor keeps far
//! references to accounts in its saved state; each process is killed with SIGKILL in
//! turn and started again, and the auditor's saved references work again — balances
//! right, an overdraft refused and rolled back across the wire.
//!
//! Each process is this test binary running the example's code (so the example is the
//! code under test, built with the tests); the test waits on the lines the processes
//! print, never on time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/bank.rs"]
#[allow(dead_code)]
mod bank;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The example's arguments, one a line, for the child process.
const ARGS: &str = "GOBS_BANK_EXAMPLE_ARGS";
/// Only a hang reaches it: every step takes milliseconds.
const HANG: Duration = Duration::from_secs(120);

/// Not a test of its own: runs the example with the arguments in `$GOBS_BANK_EXAMPLE_ARGS`.
#[test]
fn example_process() {
    let Ok(args) = std::env::var(ARGS) else {
        return;
    };
    let args: Vec<String> = args.lines().map(str::to_owned).collect();
    bank::run(&args).unwrap();
}

/// A running example process, its stdin, and its stdout line by line.
struct Process {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn spawn(args: &[&str]) -> Process {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "example_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ARGS, args.join("\n"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // The harness prints a few lines first, then starts the example's first line
            // with `test example_process ... `.
            let mut lines = out.lines().map_while(Result::ok);
            let first = lines.find_map(|l| {
                l.strip_prefix("test example_process ... ")
                    .map(str::to_owned)
            });
            for line in first.into_iter().chain(lines) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        Process {
            child,
            stdin,
            lines,
        }
    }

    /// The next line the process prints.
    fn line(&self) -> String {
        match self.lines.recv_timeout(HANG) {
            Ok(line) => line,
            Err(e) => panic!("no line from the example ({e}); see its stderr"),
        }
    }

    /// The rest of the next line, which must start with `prefix`.
    fn expect(&self, prefix: &str) -> String {
        let line = self.line();
        match line.strip_prefix(prefix) {
            Some(rest) => rest.to_owned(),
            None => panic!("expected a line starting {prefix:?}, got {line:?}"),
        }
    }

    /// Sends the auditor a command: its answer.
    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.line()
    }

    /// `kill -9`.
    fn kill(self) {
        drop(self);
    }
}

/// `kill -9`, also when a test fails: no process outlives its test.
impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> (Process, String) {
    let bank = Process::spawn(&["serve", dir.to_str().unwrap()]);
    let uri = bank.expect("bank at ");
    (bank, uri)
}

fn audit(dir: &Path, uri: &str) -> Process {
    let auditor = Process::spawn(&["audit", dir.to_str().unwrap(), uri]);
    assert_eq!(auditor.line(), "watching 2");
    auditor
}

#[test]
fn the_auditors_saved_accounts_work_again_after_each_side_is_killed() {
    let (bank_dir, auditor_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bank, uri) = serve(bank_dir.path());
    let mut auditor = audit(auditor_dir.path(), &uri);
    assert_eq!(auditor.ask("deposit gina 100"), "balance gina 100");
    assert_eq!(auditor.ask("deposit hal 7"), "balance hal 7");
    let refused = auditor.ask("withdraw gina 500");
    assert!(
        refused.starts_with("refused gina") && refused.contains("overdraft"),
        "{refused}"
    );
    assert_eq!(
        auditor.ask("balance gina"),
        "balance gina 100",
        "rolled back"
    );

    // The auditor dies: restarted, it restores its accounts from its portrait.
    auditor.kill();
    let mut auditor = audit(auditor_dir.path(), &uri);
    assert_eq!(auditor.ask("balance gina"), "balance gina 100");
    assert_eq!(auditor.ask("withdraw gina 30"), "balance gina 70");
    assert_eq!(auditor.ask("audit"), "total 77");

    // The bank dies: restarted, it serves the same URI, and the running auditor's
    // accounts reach the restored ones.
    bank.kill();
    let (bank, again) = serve(bank_dir.path());
    assert_eq!(again, uri, "the bank's URI outlives the process");
    assert_eq!(auditor.ask("balance hal"), "balance hal 7");
    let refused = auditor.ask("withdraw hal 8");
    assert!(refused.contains("overdraft"), "{refused}");
    assert_eq!(auditor.ask("audit"), "total 77");

    // Both die; the auditor comes back first, while the bank is still down: its saved
    // accounts are there, and reach the bank once it is back.
    auditor.kill();
    bank.kill();
    let mut auditor = audit(auditor_dir.path(), &uri);
    let down = auditor.ask("balance hal");
    assert!(down.starts_with("refused hal"), "{down}");
    let (bank, _) = serve(bank_dir.path());
    assert_eq!(auditor.ask("deposit hal 3"), "balance hal 10");
    assert_eq!(auditor.ask("audit"), "total 80");
    auditor.kill();
    bank.kill();
}
