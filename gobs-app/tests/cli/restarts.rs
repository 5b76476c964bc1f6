//! Machines across restarts: a killed daemon, a restored provider, a corrupt state file, a
//! daemon started while embedded commands run.

use super::*;

/// The machines' names and bindings, as `list-machines --json` shows them.
fn machines_with_bindings(state: &Path) -> Vec<(String, String, Vec<String>)> {
    let out = ok(state, &["list-machines", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
                m["bindings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| b.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn twenty_machines_survive_a_killed_daemon_with_their_bindings() {
    let dir = state();
    let s = dir.path();
    let mut daemon = Daemon::start(s);
    for i in 0..20 {
        ok(s, &["create-machine", &format!("m-{i:02}")]);
    }
    let before = machines_with_bindings(s);
    assert_eq!(before.len(), 20);
    for (name, status, bindings) in &before {
        assert_eq!(status, "running", "{name}");
        assert!(
            bindings.contains(&"run".to_string()) && bindings.contains(&"status".to_string()),
            "{name}: {bindings:?}"
        );
    }
    // kill -9: no chance to flush anything.
    let mut child = daemon.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let daemon = Daemon::start(s);
    assert_eq!(machines_with_bindings(s), before);
    // The capabilities work after the restart, through the daemon.
    let out = ok(s, &["run", "m-07", "--", "echo", "hello"]);
    assert!(out.contains("hello"), "{out}");
    assert_eq!(daemon.stop("TERM").0.code(), Some(0));
    // And in embedded mode too.
    assert_eq!(machines_with_bindings(s), before);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_restart_restores_machines_of_the_local_provider() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    let mut daemon = Daemon::start(s);
    ok(s, &["create-machine", "box", "--provider", "local"]);
    ok(s, &["run", "box", "--", "sh", "-c", "echo kept > note.txt"]);
    let before = machines_with_bindings(s);
    assert_eq!(before.len(), 1);
    assert_eq!(
        (before[0].0.as_str(), before[0].1.as_str()),
        ("box", "running")
    );
    // kill -9: the daemon flushes nothing, so the machine comes back from the store alone.
    let mut child = daemon.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let daemon = Daemon::start(s);
    assert_eq!(machines_with_bindings(s), before);
    // Its `run` capability works after the restart, in the same directory.
    let out = ok(s, &["run", "box", "--", "cat", "note.txt"]);
    assert_eq!(out.trim(), "kept");
    assert_eq!(daemon.stop("TERM").0.code(), Some(0));
    // And a process of its own (embedded mode) restores it too.
    let out = ok(s, &["run", "box", "--", "cat", "note.txt"]);
    assert_eq!(out.trim(), "kept");
    ok(s, &["destroy-machine", "box"]);
    assert!(machine_names(s).is_empty());
}

#[test]
fn a_corrupt_state_file_is_a_clear_error_and_is_left_untouched() {
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "web-1"]);
    let store = s.join("vats/registry.log");
    let mut bytes = std::fs::read(&store).unwrap();
    bytes[0] ^= 0xff; // the header's magic
    std::fs::write(&store, &bytes).unwrap();
    let err = fails(s, &["list-machines"]);
    assert!(err.contains("registry.log"), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert!(
        err.contains("backup") || err.contains("move it away"),
        "{err}"
    );
    assert_eq!(std::fs::read(&store).unwrap(), bytes, "left as it was");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_restored_provider_follows_an_edited_config() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let s = dir.path();
    // Without a shell, `exit` is not a program: the run fails.
    ok(s, &["create-machine", "before", "--provider", "local"]);
    let before = gobs(s, &["run", "before", "--", "exit", "3"]);
    assert_ne!(before.status.code(), Some(3), "{before:?}");
    // The config now gives the local provider a shell. The provider was restored from its
    // store, yet machines made from now on use the shell: `exit 3` is a builtin there.
    std::fs::write(
        s.join("config.toml"),
        "default_provider = \"dummy\"\n[providers.dummy]\nkind = \"dummy\"\n\
         [providers.local]\nkind = \"local\"\ncommand = \"/bin/sh\"\n",
    )
    .unwrap();
    ok(s, &["create-machine", "after", "--provider", "local"]);
    let after = gobs(s, &["run", "after", "--", "exit", "3"]);
    assert_eq!(after.status.code(), Some(3), "{after:?}");
}

#[test]
fn a_daemon_starts_every_time_while_embedded_commands_run() {
    let dir = state();
    let s = dir.path().to_path_buf();
    ok(&s, &["create-machine", "web-1"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = gobs(&s, &["list-machines"]);
                }
            })
        })
        .collect();
    for _ in 0..20 {
        let daemon = Daemon::start(&s);
        let (status, err) = daemon.stop("TERM");
        assert!(status.success(), "{err}");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for l in load {
        l.join().unwrap();
    }
}
