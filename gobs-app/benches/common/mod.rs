//! What the benches share: the built `gobs-app` run as a user runs it, a daemon serving a
//! state directory, bytes piped through a command, and the CPU time processes spent.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_gobs-app");

/// `gobs-app --state-dir STATE ARGS...`, dummy machines by default (whatever the host
/// allows) unless the state's config says otherwise.
pub fn command(state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("GOBS_DEFAULT_PROVIDER", "dummy")
        .arg("--state-dir")
        .arg(state)
        .args(args);
    cmd
}

/// Runs `gobs-app --state-dir STATE ARGS...`, which must succeed; its standard output.
pub fn gobs(state: &Path, args: &[&str]) -> String {
    let out = command(state, args).stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "gobs-app {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A state directory only its owner may enter (as the daemon requires).
pub fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// A daemon serving a state directory, stopped (SIGTERM) when dropped.
pub struct Daemon(Child);

impl Daemon {
    /// Starts one and returns once it says it serves (its own announcement, not a pause).
    pub fn start(state: &Path) -> Daemon {
        let mut child = command(state, &["daemon"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let serving = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains(" serving "));
        assert!(serving, "the daemon ended without serving");
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Daemon(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.0),
            rustix::process::Signal::TERM,
        );
        let _ = self.0.wait();
    }
}

/// Runs `cmd` with `data` on its standard input and its standard output read to the end;
/// checks every byte came back.
pub fn through(mut cmd: Command, data: &'static [u8]) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(data).unwrap());
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0;
    loop {
        match out.read(&mut buf).unwrap() {
            0 => break,
            n => len += n,
        }
    }
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(len, data.len());
}

/// `size` bytes of a fixed pattern, kept for the whole bench.
pub fn pattern(size: usize) -> &'static [u8] {
    Vec::leak((0..size).map(|i| (i * 31 % 251) as u8).collect())
}

/// CPU time (user and system) process `pid` has spent so far, in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the command name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / rustix::param::clock_ticks_per_second() as f64
}

/// CPU time (user and system) the children this process reaped have spent, in seconds.
pub fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage writes only into the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
