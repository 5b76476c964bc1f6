//! `gobs-app put-file` and `get-file`, black-box on the built binary, against real
//! hob-clients: machines of the `host` provider (a hob-client process on this host,
//! registered over OCapN on loopback), so no root is needed. Through the daemon and
//! without one; every byte value, an empty file, a file at exactly the limit and one past
//! it, modes, standard output, and the errors a user meets, each naming the machine, the
//! path and the fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Daemon, gobs, ok, state, text, wait_for};
use gobs_app::files::MAX_FILE;
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

/// Kills what the `host` machines of a state directory left running (their hob-clients
/// live in sessions of their own, beyond the daemon) when a test ends, passed or not.
struct HostMachines(PathBuf);

impl HostMachines {
    fn hob_client_pid(&self, machine: &str) -> Option<i32> {
        common::procs::host_hob_client(&self.0.join("hosts").join(machine))
    }
}

impl Drop for HostMachines {
    fn drop(&mut self) {
        let Ok(machines) = fs::read_dir(self.0.join("hosts")) else {
            return;
        };
        for machine in machines.flatten() {
            let name = machine.file_name().to_string_lossy().into_owned();
            if let Some(sid) = self.hob_client_pid(&name) {
                for pid in session(sid) {
                    kill(pid);
                }
            }
        }
    }
}

/// The live processes of session `sid`.
fn session(sid: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_string();
                    let mut fields = rest.split_whitespace();
                    let state = fields.next()?.to_string();
                    let session = fields.nth(2)?.parse::<i32>().ok()?;
                    Some(session == sid && state != "Z")
                })
                .unwrap_or(false)
        })
        .collect()
}

fn kill(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// A state directory whose config enables `host` (the default) and `dummy`.
fn host_state() -> (tempfile::TempDir, HostMachines) {
    let dir = state();
    fs::write(
        dir.path().join("config.toml"),
        "default_provider = \"host\"\n\
         [providers.host]\nkind = \"host\"\nhob_listen = \"127.0.0.1:0\"\n\
         [providers.dummy]\nkind = \"dummy\"\n",
    )
    .unwrap();
    let guard = HostMachines(dir.path().to_path_buf());
    (dir, guard)
}

/// Runs a command that must fail (exit code 1, nothing on stdout); returns its one-line
/// error, checked to be worded cleanly (no runs of spaces from a broken line join).
fn fails(s: &Path, args: &[&str]) -> String {
    let err = common::fails(s, args);
    assert!(!err.trim_end().contains('\n'), "more than one line: {err}");
    assert!(!err.contains("  "), "a run of spaces: {err}");
    err
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn put(s: &Path, machine: &str, local: &Path, remote: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "put-file",
        machine,
        local.to_str().unwrap(),
        remote.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(s, &args)
}

/// A directory the machine's hob-client may not write in (root writes anywhere else, so
/// as root /sys stands in: the kernel refuses to create files there, even for root).
fn unwritable(within: &Path) -> PathBuf {
    if rustix::process::geteuid().is_root() {
        PathBuf::from("/sys")
    } else {
        let dir = within.join("read-only");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
        dir
    }
}

#[test]
fn files_go_onto_a_machine_and_come_back_whole() {
    let (dir, machines) = host_state();
    let s = dir.path();
    let daemon = Daemon::start(s);
    ok(s, &["create-machine", "h1"]);
    let work = tempfile::tempdir().unwrap();
    let (local, remote) = (work.path().join("local"), work.path().join("remote"));
    fs::create_dir_all(&local).unwrap();
    fs::create_dir_all(&remote).unwrap();

    // Every byte value, several times over, and the local file's mode kept.
    let all: Vec<u8> = (0..=255u8).cycle().take(256 * 7 + 3).collect();
    let bin = local.join("all.bin");
    fs::write(&bin, &all).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o751)).unwrap();
    let on_machine = remote.join("all.bin");
    let said = put(s, "h1", &bin, &on_machine, &[]);
    let sha = sha256_hex(&all);
    assert_eq!(
        said.trim(),
        format!(
            "copied {} bytes to {} on machine h1 (mode 0751, sha256 {sha})",
            all.len(),
            on_machine.display()
        )
    );
    assert_eq!(fs::read(&on_machine).unwrap(), all);
    assert_eq!(mode_of(&on_machine), 0o751);
    // --mode wins over the local file's, and replaces the file whole.
    put(s, "h1", &bin, &on_machine, &["--mode", "0600"]);
    assert_eq!(mode_of(&on_machine), 0o600);

    // Back: to a local file (atomically: no temporary left beside it), and to stdout.
    let back = local.join("back.bin");
    let said = ok(
        s,
        &[
            "get-file",
            "h1",
            on_machine.to_str().unwrap(),
            back.to_str().unwrap(),
        ],
    );
    assert!(
        said.contains(&format!("({} bytes) from machine h1", all.len())),
        "{said}"
    );
    assert_eq!(fs::read(&back).unwrap(), all);
    let left: Vec<_> = fs::read_dir(&local)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    for args in [
        vec!["get-file", "h1", on_machine.to_str().unwrap()],
        vec!["get-file", "h1", on_machine.to_str().unwrap(), "-"],
    ] {
        let out = gobs(s, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(out.stdout, all, "{args:?}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(
        s,
        &[
            "put-file",
            "h1",
            bin.to_str().unwrap(),
            on_machine.to_str().unwrap(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(json["size"], all.len());
    assert_eq!(json["mode"], 0o751);

    // An empty file.
    let empty = local.join("empty");
    fs::write(&empty, b"").unwrap();
    let remote_empty = remote.join("empty");
    put(s, "h1", &empty, &remote_empty, &[]);
    assert_eq!(fs::read(&remote_empty).unwrap(), b"");
    let out = gobs(s, &["get-file", "h1", remote_empty.to_str().unwrap()]);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        text(&out.stderr)
    );

    // Past the old whole-message limit of 512 KiB, both ways.
    let big: Vec<u8> = (0..3 * MAX_FILE + 17)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let local_big = local.join("big");
    fs::write(&local_big, &big).unwrap();
    let remote_big = remote.join("big");
    put(s, "h1", &local_big, &remote_big, &[]);
    assert!(fs::read(&remote_big).unwrap() == big);
    let out = gobs(s, &["get-file", "h1", remote_big.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout == big);

    // A missing path on the machine, and one that is not a regular file.
    let missing = remote.join("missing");
    let err = fails(
        s,
        &[
            "get-file",
            "h1",
            missing.to_str().unwrap(),
            back.to_str().unwrap(),
        ],
    );
    assert!(err.contains("machine h1"), "{err}");
    assert!(
        err.contains(&format!("no file {}", missing.display())),
        "{err}"
    );
    assert!(err.contains("check the path"), "{err}");
    assert_eq!(
        fs::read(&back).unwrap(),
        all,
        "the local file is left as it was"
    );
    let err = fails(s, &["get-file", "h1", remote.to_str().unwrap()]);
    assert!(
        err.contains("is a directory") && err.contains("machine h1") && err.contains("-r"),
        "{err}"
    );
    let err = fails(
        s,
        &[
            "put-file",
            "h1",
            bin.to_str().unwrap(),
            &format!("{}/no/dir/x", remote.display()),
        ],
    );
    assert!(
        err.contains("does not exist") && err.contains("mkdir -p"),
        "{err}"
    );
    let err = fails(s, &["put-file", "h1", bin.to_str().unwrap(), "relative/x"]);
    assert!(
        err.contains("not absolute") && err.contains("machine h1"),
        "{err}"
    );

    // The machine refusing to write there.
    let refused_at = unwritable(work.path()).join("x.bin");
    let err = fails(
        s,
        &[
            "put-file",
            "h1",
            bin.to_str().unwrap(),
            refused_at.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains(&format!("cannot write {}", refused_at.display())),
        "{err}"
    );
    assert!(err.contains("machine h1"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("runs as uid"), "{err}");
    assert!(!refused_at.exists());

    // Local files that cannot be read.
    let err = fails(
        s,
        &[
            "put-file",
            "h1",
            local.join("nope").to_str().unwrap(),
            "/tmp/x",
        ],
    );
    assert!(err.contains("local file") && err.contains("nope"), "{err}");
    assert!(err.contains("check the path"), "{err}");
    let err = fails(s, &["put-file", "h1", local.to_str().unwrap(), "/tmp/x"]);
    assert!(
        err.contains("is a directory") && err.contains("-r"),
        "{err}"
    );

    // An unknown machine, and machines whose provider has no files.
    let err = fails(s, &["put-file", "nope", bin.to_str().unwrap(), "/tmp/x"]);
    assert!(
        err.contains("no machine named \"nope\"") && err.contains("h1"),
        "{err}"
    );
    let err = fails(s, &["get-file", "nope", "/tmp/x"]);
    assert!(err.contains("no machine named \"nope\""), "{err}");
    ok(s, &["create-machine", "d1", "--provider", "dummy"]);
    for args in [
        vec!["put-file", "d1", bin.to_str().unwrap(), "/tmp/x"],
        vec!["get-file", "d1", "/tmp/x"],
    ] {
        let err = fails(s, &args);
        assert!(err.contains("machine d1 exposes no"), "{err}");
        assert!(err.contains("kind dummy"), "{err}");
        assert!(err.contains("container, qemu, host"), "{err}");
    }
    // A machine that is not running, worded as `run` words it.
    common::fails(s, &["create-machine", "fail-1", "--provider", "dummy"]);
    let err = fails(s, &["put-file", "fail-1", bin.to_str().unwrap(), "/tmp/x"]);
    let ran = fails(s, &["run", "fail-1", "--", "true"]);
    assert!(
        err.contains("machine fail-1 failed") && err.contains("destroy it"),
        "{err}"
    );
    assert_eq!(err, ran);
    let list = ok(s, &["machine", "h1"]);
    assert!(list.contains("get-file,put-file,run,status"), "{list}");

    // The machine's hob-client gone: unreachable, as `run` says it.
    let pid = machines.hob_client_pid("h1").unwrap();
    kill(pid);
    wait_for("h1 to be unreachable", || {
        ok(s, &["machine", "h1"]).contains("unreachable")
    });
    let err = fails(s, &["get-file", "h1", on_machine.to_str().unwrap()]);
    assert!(err.contains("machine \"h1\" is unreachable"), "{err}");
    assert!(err.contains(&on_machine.display().to_string()), "{err}");
    let ran = fails(s, &["run", "h1", "--", "true"]);
    assert!(ran.contains("machine \"h1\" is unreachable"), "{ran}");

    ok(s, &["destroy-machine", "h1"]);
    assert!(!s.join("hosts/h1").exists());
    daemon.stop("TERM");
}

#[test]
fn without_a_daemon_files_take_the_same_path() {
    let (dir, guard) = host_state();
    let s = dir.path();
    ok(s, &["create-machine", "h2"]);
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("a.bin");
    let bytes: Vec<u8> = (0..=255u8).rev().collect();
    fs::write(&bin, &bytes).unwrap();
    let remote = work.path().join("on-h2");
    // Each command starts the boss's gateway anew; the hob-client attaches again.
    put(s, "h2", &bin, &remote, &["--mode", "640"]);
    assert_eq!(fs::read(&remote).unwrap(), bytes);
    assert_eq!(mode_of(&remote), 0o640);
    let out = gobs(s, &["get-file", "h2", remote.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, bytes);
    ok(s, &["destroy-machine", "h2"]);
    let pid = guard.hob_client_pid("h2");
    assert!(pid.is_none(), "the machine's directory is gone");
}
