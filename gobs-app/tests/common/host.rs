//! `host` machines' hob-clients for black-box tests: the real one a machine's creation
//! started (it lives in a session of its own, beyond the daemon), and more started by the
//! test from a state directory of its choosing (and registration, if it gives one).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use gobs_app::hob_net::client_state;

use crate::common::{Daemon, bare, gobs, ok, state, text, wait_for};

/// A config whose machines are `host` ones, with the boss's machine listener on loopback.
pub const CONFIG: &str = "default_provider = \"host\"\n\
    [providers.host]\nkind = \"host\"\nhob_listen = \"127.0.0.1:0\"\n";

/// Kills the real hob-client of a host machine (given its directory, `hosts/M`) when told
/// and when the test ends, passed or not.
pub struct RealClient(pub PathBuf);

impl RealClient {
    pub fn pid(&self) -> Option<rustix::process::Pid> {
        rustix::process::Pid::from_raw(crate::common::procs::host_hob_client(&self.0)?)
    }

    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            // A zombie leader is not the end: its other threads may still be exiting, and
            // they hold its descriptors (its registry's lock among them) until the last
            // one is gone; so the end is a zombie with no thread left beside it.
            let alive = || {
                let proc = format!("/proc/{}", pid.as_raw_nonzero());
                let zombie = fs::read_to_string(format!("{proc}/stat"))
                    .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')));
                let threads = fs::read_dir(format!("{proc}/task")).map_or(0, |d| d.count());
                fs::metadata(&proc).is_ok() && (!zombie || threads > 1)
            };
            wait_for("the real hob-client to end", || !alive());
        }
    }
}

impl Drop for RealClient {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A `gobs-app hob-client` the test started on a state directory; killed when dropped.
/// Its standard error is read as it comes (a full pipe would stop a chatty client), and
/// kept for [`Client::exited`].
pub struct Client {
    pub child: Child,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Client {
    /// Starts a hob-client on the state directory `dir` (already registered).
    pub fn start(dir: &Path) -> Client {
        Client::start_with(dir, None)
    }

    /// Starts a hob-client on the state directory `dir`, registering first through the
    /// registration sturdyref `registration` if one is given.
    pub fn start_with(dir: &Path, registration: Option<&str>) -> Client {
        let mut cmd = bare();
        cmd.args(["hob-client", "--dir"]).arg(dir);
        if let Some(uri) = registration {
            cmd.args(["--registration", uri]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut err = Vec::new();
            let _ = std::io::Read::read_to_end(&mut pipe, &mut err);
            err
        });
        Client {
            child,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until it exits by itself; answers its exit code and standard error.
    pub fn exited(mut self) -> (Option<i32>, String) {
        wait_for("the hob-client to exit", || {
            self.child.try_wait().unwrap().is_some()
        });
        let status = self.child.wait().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        (status.code(), text(&err))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The location a hob-client with state directory `dir` proves (its node's identity).
pub fn location(dir: &Path) -> String {
    let (tls, _) = client_state::inspect(dir).unwrap();
    format!("ocapn://{}.tcp-tls", tls.unwrap().designator())
}

/// A daemon on a fresh state directory with config `config` (whose default provider is
/// `host`), started with environment `env`, and host machine `name` created and
/// registered: the directory, the daemon and the machine's real hob-client.
pub fn with_machine(
    config: &str,
    name: &str,
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Daemon, RealClient) {
    let dir = state();
    fs::write(dir.path().join("config.toml"), config).unwrap();
    let daemon = Daemon::start_with(dir.path(), env);
    let real = RealClient(dir.path().join("hosts").join(name));
    ok(dir.path(), &["create-machine", name]);
    // Registered; its client writes its state once it has the boss's answer.
    let client = dir.path().join(format!("hosts/{name}/client"));
    wait_for("the machine's client to store its state", || {
        client_state::inspect(&client).unwrap().1.is_some()
    });
    (dir, daemon, real)
}

/// The pid of the hob-client that runs machine `name`'s commands (their parent), if a
/// command runs there now.
pub fn served_by(state: &Path, name: &str) -> Option<u32> {
    let out = gobs(state, &["run", name, "--", "sh", "-c", "echo $PPID"]);
    out.status
        .success()
        .then(|| text(&out.stdout).trim().parse().ok())
        .flatten()
}
