//! `gobs-app run -t` and `gobs-app shell`, black-box under tmux: the command line runs in a
//! tmux pane (a real terminal), keys are typed with `send-keys` and the screen read with
//! `capture-pane`, waiting on what appears. Checked: the machine's shell runs what is typed,
//! its standard input is a pseudo-terminal of the pane's size that follows a
//! `resize-window`, Ctrl-C interrupts the machine's foreground command, the shell's exit code
//! is the command line's, and the pane's terminal is given back as it was (`icanon echo`)
//! after the end, after the daemon died, and after a SIGTERM to the command line. On a `host`
//! machine through the daemon, on a `local` machine embedded and through the daemon (root),
//! on a `container` (root: its own devpts) and on a `qemu` guest. Ignored without `CI` or
//! `GOBS_REQUIRE_PRIVILEGED` (tmux is needed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/setup.rs"]
mod setup;

use std::path::Path;
use std::process::Command;

use common::{Daemon, ok, wait_for};

/// A tmux server of the test's own (its socket name cannot collide), one session running
/// `sh` in a pane of 100×30; killed when dropped, passed or not.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start() -> Tmux {
        gobs_testkit::need(&[gobs_testkit::Need::Command("tmux", "tmux")]);
        let mut tag = [0u8; 6];
        getrandom::fill(&mut tag).unwrap();
        let socket = format!(
            "gobs-term-{}-{}",
            std::process::id(),
            tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let tmux = Tmux { socket };
        // No config, no status line (the pane is the whole window), a plain shell with a
        // prompt that cannot be mistaken for output.
        let started = tmux
            .command()
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "100",
                "-y",
                "30",
            ])
            .args(["env", "PS1=outer$ ", "TERM=xterm-256color", "sh"])
            .status()
            .unwrap();
        assert!(started.success(), "tmux did not start");
        tmux.tmux(&["set-option", "-g", "status", "off"]);
        tmux.wait_screen("the pane's shell prompt", |s| s.contains("outer$"));
        tmux
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text`, then Enter.
    fn type_line(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
        self.tmux(&["send-keys", "Enter"]);
    }

    /// The pane's screen and history, wrapped lines joined.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-"])
    }

    fn wait_screen(&self, what: &str, mut done: impl FnMut(&str) -> bool) {
        let mut last = String::new();
        let start = std::time::Instant::now();
        while !done(&last) {
            assert!(
                start.elapsed() < common::HANG,
                "still waiting for {what} after {:?}; the screen:\n{last}",
                common::HANG
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
            last = self.screen();
        }
    }

    /// The pane's size as tmux has it: `ROWS COLS`.
    fn pane_size(&self) -> String {
        self.tmux(&["display-message", "-p", "#{pane_height} #{pane_width}"])
            .trim()
            .to_string()
    }

    /// Checks, in the pane's own shell, that its terminal is back in canonical mode with
    /// echo (a raw terminal would not even run the command: Enter would be `\r`).
    fn check_restored(&self, mark: &str) {
        self.type_line(&format!(
            "stty -a | tr -s ' ;' '\\n\\n' | grep -x -e '-*icanon' -e '-*echo' | tr '\\n' ' '; echo :{mark}"
        ));
        // The answer's line, not the typed one.
        let answer = |s: &str| {
            s.lines()
                .find(|l| l.ends_with(&format!(":{mark}")) && !l.contains("stty"))
                .map(str::to_string)
        };
        self.wait_screen("the pane's terminal settings", |s| answer(s).is_some());
        let screen = self.screen();
        assert_eq!(
            answer(&screen).unwrap(),
            format!("icanon echo :{mark}"),
            "{screen}"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

/// The command line that runs `args` on state directory `s`, as typed into the pane.
fn typed(s: &Path, args: &str) -> String {
    format!(
        "GOBS_DEFAULT_PROVIDER=dummy {} --state-dir {} {args}; echo \"exited $?\"",
        common::bin(),
        s.display()
    )
}

/// Every check of a terminal on machine `m` of state directory `s`, in a fresh pane.
fn a_terminal_works_like_ssh_t(s: &Path, m: &str) {
    let tmux = Tmux::start();
    tmux.type_line(&typed(s, &format!("shell {m}")));
    // Typed commands run there: the answer is not in what was typed.
    tmux.type_line("PS1='remote$ '");
    tmux.type_line("echo \"hello-$((6*7))\"");
    tmux.wait_screen("the machine's shell to answer", |s| s.contains("hello-42"));
    tmux.type_line("echo \"T=$(tty) S=$(stty size) E=$TERM\"");
    let size = tmux.pane_size();
    tmux.wait_screen("tty and stty there", |s| s.contains(" E=xterm-256color"));
    let screen = tmux.screen();
    let line = screen.lines().find(|l| l.starts_with("T=")).unwrap();
    assert!(line.starts_with("T=/dev/pts/"), "{screen}");
    assert!(line.contains(&format!(" S={size} ")), "{screen}");

    // A resize reaches the machine's terminal (its shell waits for it).
    tmux.type_line(
        "while [ \"$(stty size)\" != '20 70' ]; do sleep 0.1; done; echo \"resized-$((1+1))\"",
    );
    tmux.tmux(&["resize-window", "-x", "70", "-y", "20"]);
    tmux.wait_screen("the resize to reach the machine", |s| {
        s.contains("resized-2")
    });

    // Ctrl-C interrupts the foreground command there (`cat`, or the shell about to become
    // it: either dies of the interrupt), once it printed that it runs.
    tmux.type_line("sh -c 'echo \"running-$((4+4))\"; exec cat'");
    tmux.wait_screen("cat to start", |s| s.contains("running-8"));
    tmux.tmux(&["send-keys", "C-c"]);
    // What is typed before the shell's next prompt may be discarded (bash does), as on any
    // terminal: the prompt is waited for.
    tmux.wait_screen("the shell's prompt after Ctrl-C", |s| {
        let last = s.lines().rev().find(|l| !l.trim().is_empty());
        last.map(str::trim_end) == Some("remote$")
    });
    tmux.type_line("echo \"cat-ended-$?\"");
    tmux.wait_screen("cat to be interrupted", |s| s.contains("cat-ended-130"));

    tmux.type_line("exit 3");
    tmux.wait_screen("the command line to end", |s| s.contains("exited 3"));
    tmux.check_restored("after-exit");

    // A SIGTERM to the command line ends it, its terminal given back.
    tmux.type_line(&typed(s, &format!("run -t {m} -- sh")));
    tmux.type_line("echo \"again-$((2+2))\"");
    tmux.wait_screen("the second run", |s| s.contains("again-4"));
    let cli = cli_pid(s);
    rustix::process::kill_process(cli, rustix::process::Signal::TERM).unwrap();
    tmux.wait_screen("the command line to end", |s| s.contains("exited 143"));
    tmux.check_restored("after-term");
}

/// The `gobs-app run -t` or `shell` running on state directory `s`.
fn cli_pid(s: &Path) -> rustix::process::Pid {
    let state = s.display().to_string();
    let mut found = None;
    wait_for("the command line's process", || {
        found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let ours = args.contains(&state.as_bytes())
                && args.iter().any(|a| *a == b"-t" || *a == b"shell");
            ours.then(|| rustix::process::Pid::from_raw(pid)).flatten()
        });
        found.is_some()
    });
    found.unwrap()
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs tmux: CI or GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_host_machine_gives_a_terminal_through_the_daemon() {
    let (dir, daemon, _real) = host::with_machine(host::CONFIG, "h1", &[]);
    let s = dir.path();
    a_terminal_works_like_ssh_t(s, "h1");

    // The daemon dies under a terminal: the command line says so, its terminal given back.
    let tmux = Tmux::start();
    tmux.type_line(&typed(s, "shell h1"));
    tmux.type_line("echo \"up-$((3+3))\"");
    tmux.wait_screen("the shell", |s| s.contains("up-6"));
    daemon.stop("KILL");
    tmux.wait_screen("the command line to end", |s| s.contains("exited 1\n"));
    let screen = tmux.screen();
    assert!(screen.contains("closed the connection"), "{screen}");
    tmux.check_restored("after-daemon");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands) and tmux: \
              GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_local_machine_gives_a_terminal_embedded_and_through_the_daemon() {
    gobs_testkit::need(common::LOCAL_PROVIDER);
    let dir = common::state();
    let s = dir.path();
    ok(s, &["create-machine", "m", "--provider", "local"]);
    a_terminal_works_like_ssh_t(s, "m");
    let daemon = Daemon::start(s);
    a_terminal_works_like_ssh_t(s, "m");
    daemon.stop("TERM");
    ok(s, &["destroy-machine", "m"]);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static, iproute2 and tmux: \
              GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_container_gives_a_terminal_of_its_own() {
    gobs_testkit::need(common::needs::CONTAINER);
    let mut setup = setup::Setup::containers("");
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    ok(&s, &["create-machine", "box-t"]);
    // Its terminals are its own devpts's, not the host's.
    let inside = ok(&s, &["run", "box-t", "--", "ls", "/dev/pts"]);
    assert!(inside.lines().any(|l| l == "ptmx"), "{inside}");
    a_terminal_works_like_ssh_t(&s, "box-t");
    ok(&s, &["destroy-machine", "box-t"]);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, qemu-system-x86, a kernel in /boot, busybox-static and tmux: \
              GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_qemu_guest_gives_a_terminal() {
    gobs_testkit::need(common::needs::QEMU);
    let mut setup = setup::Setup::with_config(
        "default_provider = \"vm\"\n[providers.vm]\nkind = \"qemu\"\naccel = \"tcg\"\n\
         register_timeout = \"600s\"\nmemory = \"512MiB\"\n",
        None,
    );
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    ok(&s, &["create-machine", "vm-t"]);
    a_terminal_works_like_ssh_t(&s, "vm-t");
    ok(&s, &["destroy-machine", "vm-t"]);
}

#[test]
fn run_t_without_a_terminal_is_refused_saying_why() {
    let dir = common::state();
    let s = dir.path();
    ok(s, &["create-machine", "d"]);
    let out = common::gobs(s, &["run", "-t", "d", "--", "sh"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out.stderr));
    let err = common::text(&out.stderr);
    assert!(err.contains("needs a terminal"), "{err}");
    let out = common::gobs(s, &["shell", "d", "--json"]);
    assert!(!out.status.success());
    assert!(
        common::text(&out.stderr).contains("--json"),
        "{}",
        common::text(&out.stderr)
    );
}
