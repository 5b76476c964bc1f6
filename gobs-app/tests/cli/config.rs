//! The config file and where the state lives: errors with line and column, `init`, and the
//! environment variables that choose them.

use super::*;

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("custom.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_unknown_config_key_is_an_error_with_line_and_column() {
    let dir = state();
    let config = write_config(
        dir.path(),
        "default_provider = \"dummy\"\n\n[store]\nkind = \"log\"\n  colour = \"blue\"\n",
    );
    let err = fails(
        dir.path(),
        &["--config", config.to_str().unwrap(), "list-machines"],
    );
    assert!(err.contains(config.to_str().unwrap()), "{err}");
    assert!(err.contains("line 5, column 3"), "{err}");
    assert!(err.contains("unknown field `colour`"), "{err}");
}

#[test]
fn a_wrong_config_type_is_an_error_with_line_and_column() {
    let dir = state();
    // Found without --config: <state-dir>/config.toml.
    std::fs::write(
        dir.path().join("config.toml"),
        "[store]\ndurability = true\n",
    )
    .unwrap();
    let err = fails(dir.path(), &["providers"]);
    assert!(err.contains("config.toml"), "{err}");
    assert!(err.contains("line 2, column 14"), "{err}");
    assert!(err.contains("invalid type: boolean `true`"), "{err}");
}

#[test]
fn the_default_provider_must_be_enabled() {
    let dir = state();
    let config = write_config(dir.path(), "default_provider = \"aws\"\n");
    let err = fails(
        dir.path(),
        &["--config", config.to_str().unwrap(), "providers"],
    );
    assert!(err.contains("line 1, column 20"), "{err}");
    assert!(
        err.contains("enabled providers: container, dummy, local, qemu"),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_config_from_the_environment_is_used() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = state();
    let config = write_config(
        dir.path(),
        "default_provider = \"box\"\n[providers.box]\nkind = \"local\"\n",
    );
    let out = bare()
        .env("GOBS_CONFIG", &config)
        .arg("--state-dir")
        .arg(dir.path())
        .args(["create-machine", "m"])
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "created machine m (provider box, running)\n"
    );
}

#[test]
fn a_missing_explicit_config_is_an_error() {
    let dir = state();
    let err = fails(dir.path(), &["--config", "/no/such/gobs.toml", "providers"]);
    assert!(err.contains("/no/such/gobs.toml"), "{err}");
    assert!(err.contains("gobs-app init"), "{err}");
}

#[test]
fn init_writes_a_config_that_loads_and_refuses_to_overwrite() {
    let dir = state();
    let s = dir.path();
    let out = ok(s, &["init"]);
    let path = s.join("config.toml");
    assert_eq!(
        out,
        format!(
            "wrote the default config to {}\ndefault provider: dummy \
             ($GOBS_DEFAULT_PROVIDER names it)\n",
            path.display()
        )
    );
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        written.contains("chose this on this host: $GOBS_DEFAULT_PROVIDER names it.\ndefault_provider = \"dummy\"\n"),
        "{written}"
    );
    // The written file is what later commands load.
    ok(s, &["create-machine", "web-1"]);
    assert!(ok(s, &["providers"]).contains("dummy"));

    std::fs::write(&path, "# edited\n").unwrap();
    let err = fails(s, &["init"]);
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# edited\n");
    ok(s, &["init", "--force"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);

    let elsewhere = s.join("etc/gobs.toml");
    let out = bare()
        .args(["init", "--config"])
        .arg(&elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success(), "init --config needs no state dir");
    assert!(ok(s, &["--config", elsewhere.to_str().unwrap(), "providers"]).contains("local"));
}

#[test]
fn no_resolvable_state_dir_says_what_to_set() {
    let out = bare().arg("list-machines").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("--state-dir"), "{err}");
    assert!(err.contains("GOBS_STATE_DIR"), "{err}");
}

#[test]
fn the_state_dir_comes_from_the_environment_in_order() {
    let dir = state();
    let root = dir.path();
    let run = |envs: &[(&str, PathBuf)]| {
        let mut cmd = bare();
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.args(["create-machine", "m"]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    run(&[("HOME", root.join("home"))]);
    assert!(
        root.join("home/.local/state/gobs/vats/registry.log")
            .exists()
    );
    run(&[
        ("HOME", root.join("home2")),
        ("XDG_STATE_HOME", root.join("xdg")),
    ]);
    assert!(root.join("xdg/gobs/vats/registry.log").exists());
    run(&[
        ("XDG_STATE_HOME", root.join("xdg2")),
        ("GOBS_STATE_DIR", root.join("gobs")),
    ]);
    assert!(root.join("gobs/vats/registry.log").exists());
    assert!(!root.join("xdg2").exists());
}
