//! Black-box tests of the confined `local` provider, through a daemon as a user would run
//! it: what a machine's command can and cannot reach, and that destroying a machine ends
//! everything it started. The `local` provider confines commands with a mount namespace
//! and a uid of their own, so each test needs root ([`LOCAL_PROVIDER`]): reported as ignored
//! without `GOBS_REQUIRE_PRIVILEGED` (or `CI`), failing by name with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use std::path::Path;
use std::process::Stdio;

/// `gobs-app run NAME -- ARGV...`; returns (exit code, stdout, stderr).
fn run(state: &Path, machine: &str, argv: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["run", machine, "--"];
    args.extend_from_slice(argv);
    let out = gobs(state, &args);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn sh(state: &Path, machine: &str, script: &str) -> (Option<i32>, String, String) {
    run(state, machine, &["sh", "-c", script])
}

/// Destroys the named machines when dropped, so a failing test leaves no process behind.
struct Machines<'a>(&'a Path, Vec<&'static str>);

impl Drop for Machines<'_> {
    fn drop(&mut self) {
        for name in &self.1 {
            let _ = gobs(self.0, &["destroy-machine", name]);
        }
    }
}

/// Whether process `pid` is alive (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|status| {
            !status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .unwrap_or(false)
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_command_cannot_reach_the_state_the_socket_other_machines_or_the_daemons_environment() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    let daemon = Daemon::start_with(s, &[("AWS_SECRET_ACCESS_KEY", "leaked-secret")]);
    let _cleanup = Machines(s, vec!["victim", "m"]);
    ok(s, &["create-machine", "victim", "--provider", "local"]);
    ok(s, &["create-machine", "m", "--provider", "local"]);
    let state = s.display().to_string();

    // Another machine's directory, and the stores next to vats/boss.log.
    let (code, _, _) = sh(s, "m", &format!("touch {state}/machines/victim/planted"));
    assert_ne!(code, Some(0));
    assert!(!s.join("machines/victim/planted").exists());
    let (code, out, _) = sh(
        s,
        "m",
        &format!("ls {state}/vats; touch {state}/vats/planted"),
    );
    assert_ne!(code, Some(0));
    assert!(!out.contains("boss"), "{out}");
    assert!(!s.join("vats/planted").exists());
    // Through the daemon's own view of the file system.
    let (code, _, _) = sh(
        s,
        "m",
        &format!("ls /proc/{}/root{state}/vats", daemon.pid()),
    );
    assert_ne!(code, Some(0));

    // The daemon's socket: driving gobs-app from inside the machine does nothing.
    let bin = bin();
    let (code, _, _) = run(
        s,
        "m",
        &[&bin, "--state-dir", &state, "destroy-machine", "victim"],
    );
    assert_ne!(code, Some(0));
    assert_eq!(machine_names(s), ["m", "victim"]);

    // A clean environment, its own uid, its own directory.
    let (code, env, _) = run(s, "m", &["env"]);
    assert_eq!(code, Some(0));
    assert!(!env.contains("leaked-secret"), "{env}");
    assert!(env.contains(&format!("HOME={state}/machines/m\n")), "{env}");
    let (_, uid, _) = run(s, "m", &["id", "-u"]);
    let uid: u32 = uid.trim().parse().unwrap();
    assert_ne!(uid, 0);
    let (_, victim_uid, _) = run(s, "victim", &["id", "-u"]);
    assert_ne!(victim_uid.trim().parse::<u32>().unwrap(), uid);
    let (code, out, _) = sh(s, "m", "pwd; touch mine && ls");
    assert_eq!(code, Some(0));
    assert_eq!(out, format!("{state}/machines/m\nmine\n"));
    assert!(s.join("machines/m/mine").exists());
    // A private /tmp: what one machine leaves there, another does not see.
    sh(s, "m", "echo hi > /tmp/note");
    let (code, _, _) = sh(s, "victim", "cat /tmp/note");
    assert_ne!(code, Some(0));
    daemon.stop("TERM");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn destroying_a_machine_ends_every_process_it_started() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    let daemon = Daemon::start(s);
    let _cleanup = Machines(s, vec!["m"]);
    ok(s, &["create-machine", "m", "--provider", "local"]);
    // One leaves the process group and session, one is double-forked into the background
    // (its parent exits at once, so it is orphaned).
    let (code, out, _) = sh(
        s,
        "m",
        "setsid sleep 1000 >/dev/null 2>&1 < /dev/null & echo $!; \
         sh -c 'sleep 1001 >/dev/null 2>&1 < /dev/null & echo $!'",
    );
    assert_eq!(code, Some(0));
    let pids: Vec<u32> = out.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{out}");
    assert!(pids.iter().all(|p| alive(*p)), "both are running: {pids:?}");
    ok(s, &["destroy-machine", "m"]);
    // Killed processes end as soon as the kernel gets to them; the bound only catches a hang.
    wait_for(&format!("the end of {pids:?}"), || {
        !pids.iter().any(|p| alive(*p))
    });
    assert!(!s.join("machines/m").exists());
    daemon.stop("TERM");
}

/// Starts `run m -- sh -c 'echo $$ > pid; exec sleep 300'`, waits for the command, kills
/// the client with SIGKILL, and checks the command ends.
fn killing_the_client_kills_the_command(s: &Path) {
    let mut client = bare()
        .arg("--state-dir")
        .arg(s)
        .args([
            "run",
            "m",
            "--",
            "sh",
            "-c",
            "echo $$ > pid; exec sleep 300",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = s.join("machines/m/pid");
    wait_for("the command to start", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|t| t.ends_with('\n'))
    });
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::fs::remove_file(&pid_file).unwrap();
    assert!(alive(pid));
    client.kill().unwrap();
    client.wait().unwrap();
    wait_for("the command to end with its client", || !alive(pid));
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_run_whose_client_died_is_killed() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    let _cleanup = Machines(s, vec!["m"]);
    ok(s, &["create-machine", "m", "--provider", "local"]);
    // Embedded: the command line had the command as its child.
    killing_the_client_kills_the_command(s);
    // Through the daemon: the daemon sees the client hang up.
    let daemon = Daemon::start(s);
    killing_the_client_kills_the_command(s);
    daemon.stop("TERM");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn whole_answers_are_cut_alike_through_the_daemon_and_embedded() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    let _cleanup = Machines(s, vec!["m"]);
    ok(s, &["create-machine", "m", "--provider", "local"]);
    // `--json` asks for the whole answer at the end: each stream cut at its bound.
    let args = [
        "--json",
        "run",
        "m",
        "--",
        "head",
        "-c",
        "3000000",
        "/dev/zero",
    ];
    let embedded = gobs(s, &args);
    let daemon = Daemon::start(s);
    let served = gobs(s, &args);
    daemon.stop("TERM");
    for out in [&embedded, &served] {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let stdout = answer["stdout"].as_str().unwrap();
        assert_eq!(stdout.len(), 1024 * 1024);
        assert!(stdout.bytes().all(|b| b == 0));
        let err = answer["stderr"].as_str().unwrap();
        assert!(
            err.contains("stdout cut at 1048576 bytes; 1951424 more bytes were not kept"),
            "{err}"
        );
        assert_eq!(answer["truncated"], true);
    }
    assert_eq!(embedded.stdout, served.stdout);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_runs_own_time_limit_replaces_the_providers() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    let _cleanup = Machines(s, vec!["m"]);
    ok(s, &["create-machine", "m", "--provider", "local"]);
    // The provider's run_timeout is an hour; this run asks for one second.
    let out = gobs(s, &["run", "--timeout", "1s", "m", "--", "sleep", "600"]);
    assert_eq!(out.status.code(), Some(128 + 9), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "\n[gobs-app: the command ran past its limit of 1s and was killed]\n"
    );
}
