//! What the black-box tests share: running the `gobs-app` binary on a state directory, and
//! a daemon child that is killed if a test fails before stopping it.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod fleet;
pub mod needs;
pub mod nft;
pub mod proc_net;
pub mod procs;
pub mod rng;

pub const BIN: &str = env!("CARGO_BIN_EXE_gobs-app");

/// What a test of `local` machines needs: the provider confines each command in a mount
/// namespace of its own, as a uid of its own, so gobs-app must run as root.
pub const LOCAL_PROVIDER: &[gobs_testkit::Need] =
    &[gobs_testkit::Need::Root, gobs_testkit::Need::MountTmpfs];

/// The binary under test: `$GOBS_TEST_BIN` if set (to run these tests against another
/// build, e.g. to see which fail on an older one), else this crate's.
pub fn bin() -> String {
    std::env::var("GOBS_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// The binary with a clean environment: no config or state variables leak in from the
/// developer's shell.
pub fn bare() -> Command {
    let mut cmd = Command::new(bin());
    for var in [
        "GOBS_CONFIG",
        "GOBS_STATE_DIR",
        "XDG_STATE_HOME",
        "HOME",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    // Machines these tests make are dummies whatever the host allows (the default
    // provider of a state without a config file is the most real one).
    cmd.env("GOBS_DEFAULT_PROVIDER", "dummy");
    cmd.stdin(Stdio::null());
    cmd
}

pub fn gobs(state: &Path, args: &[&str]) -> Output {
    bare()
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(state: &Path, args: &[&str]) -> String {
    let out = gobs(state, args);
    assert!(
        out.status.success(),
        "gobs-app {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a command that must fail with exit code 1; returns its stderr.
pub fn fails(state: &Path, args: &[&str]) -> String {
    let out = gobs(state, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "gobs-app {args:?} should fail:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    text(&out.stderr)
}

/// The machine names `list-machines --json` reports, from a new process.
pub fn machine_names(state: &Path) -> Vec<String> {
    listed(state)
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

/// How long a wait may last before the test calls it a hang: generous, so a loaded machine
/// is slow, not failing; no test claims a time with it.
pub const HANG: Duration = Duration::from_secs(120);

/// Waits until `done` holds, checking every 20 ms; fails the test after [`HANG`].
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < HANG,
            "still waiting for {what} after {HANG:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Keeps `child`'s standard error (a thread drains the pipe, so the child never blocks),
/// and waits until a line `announces` it serves: whether one did (else the pipe closed,
/// the child exited), the stderr so far, and the draining thread.
pub fn drain_until(
    child: &mut Child,
    announces: impl Fn(&str) -> bool + Send + 'static,
) -> (
    std::sync::Arc<std::sync::Mutex<String>>,
    bool,
    thread::JoinHandle<()>,
) {
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (serving, announced) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    let kept = stderr.clone();
    let drain = thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if announces(&line) {
                let _ = serving.send(());
            }
            let mut kept = kept.lock().unwrap();
            kept.push_str(&line);
            kept.push('\n');
        }
    });
    let served = announced.recv_timeout(HANG).is_ok();
    (stderr, served, drain)
}

/// `list-machines --json` of state directory `state`, from a new process.
pub fn listed(state: &Path) -> Vec<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_str(&ok(state, &["list-machines", "--json"]))
        .expect("list-machines --json prints JSON");
    json.as_array().unwrap().clone()
}

/// A `gobs-app daemon` child; killed if a test fails before stopping it.
pub struct Daemon {
    pub child: Option<Child>,
    pub socket: PathBuf,
    /// Its standard error so far (a thread drains the pipe, so the daemon never blocks).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    drain: Option<thread::JoinHandle<()>>,
}

impl Daemon {
    pub fn start(state: &Path) -> Daemon {
        Daemon::start_with(state, &[])
    }

    /// A daemon with extra environment variables. Returns once the daemon said it serves:
    /// a socket file is not enough, since a killed daemon leaves its own behind.
    pub fn start_with(state: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = bare();
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut child = cmd
            .arg("--state-dir")
            .arg(state)
            .arg("daemon")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let serving = format!("daemon (pid {pid}) serving");
        let (stderr, served, drain) = drain_until(&mut child, move |line| line.contains(&serving));
        let mut daemon = Daemon {
            child: Some(child),
            socket: state.join("daemon.sock"),
            stderr,
            drain: Some(drain),
        };
        if !served {
            let child = daemon.child.as_mut().unwrap();
            let _ = child.kill();
            let status = child.wait().unwrap();
            panic!(
                "the daemon did not start serving ({status}): {}",
                daemon.stderr()
            );
        }
        daemon
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// What the daemon wrote on standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal` (`TERM`, `INT`) and waits for the exit; returns its status and stderr.
    pub fn stop(mut self, signal: &str) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > HANG {
                let _ = child.kill();
                panic!("the daemon did not exit after SIG{signal}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(drain) = self.drain.take() {
            drain.join().unwrap();
        }
        (status, self.stderr())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `gobs-app --state-dir STATE ARGS...` run with a pseudo-terminal for its standard input,
/// output and error (by `script`, util-linux): its output is what the terminal showed.
pub fn on_a_terminal(state: &Path, args: &[&str]) -> Command {
    let mut words = vec![bin(), "--state-dir".into(), state.display().to_string()];
    words.extend(args.iter().map(|a| a.to_string()));
    let line = shlex::try_join(words.iter().map(String::as_str)).unwrap();
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    // The same clean environment as `bare()` gives the binary.
    for (key, value) in bare().get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// The step lines in `shown`: those that begin with a time in seconds (`   0.2s  ...`).
pub fn step_lines(shown: &str) -> Vec<String> {
    shown
        .lines()
        .map(|l| l.trim_end_matches('\r').trim_start())
        .filter(|l| {
            l.split_once("s  ")
                .is_some_and(|(time, _)| time.parse::<f64>().is_ok())
        })
        .map(str::to_string)
        .collect()
}

/// Checks that `lines` hold the steps `steps` in that order, each after its time.
pub fn shows_in_order(lines: &[String], steps: &[&str], whole: &str) {
    let mut at = 0;
    for step in steps {
        let found = lines[at..].iter().position(|l| l.contains(step));
        let Some(found) = found else {
            panic!("no step {step:?} after line {at} in:\n{whole}");
        };
        at += found + 1;
    }
}

/// A fresh state directory, private as gobs-app makes them.
pub fn state() -> TempDir {
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .unwrap()
}

/// Copies the state directory `tests/fixtures/NAME` (one an earlier release wrote) into
/// `to`, for an upgrade test to open.
pub fn copy_fixture(name: &str, to: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let copied = Command::new("cp")
        .arg("-rT")
        .arg(&fixture)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        copied.success(),
        "cp -rT {} {}",
        fixture.display(),
        to.display()
    );
}

/// Asks the daemon on `socket` to run `argv` on `machine` in a terminal (as `run -t` does,
/// which wants a terminal of its own); its last frame, as sent.
pub fn run_in_terminal(socket: &Path, machine: &str, argv: &[&str]) -> String {
    use std::io::{BufRead, Write};
    let request = serde_json::json!({"version": 2, "request": {
        "op": "run", "name": machine, "command": argv, "stream": true,
        "tty": {"term": "xterm", "size": {"rows": 24, "cols": 80}},
    }});
    let mut conn = std::os::unix::net::UnixStream::connect(socket).unwrap();
    writeln!(conn, "{request}").unwrap();
    let lines: Vec<String> = std::io::BufReader::new(conn)
        .lines()
        .map_while(Result::ok)
        .collect();
    lines.last().cloned().unwrap_or_default()
}
