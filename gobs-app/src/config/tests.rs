//! The config file's parsing and its errors, against the file `init` writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gobs_runtime::StoreKind;
use gobs_runtime::store::Durability;

use super::*;

fn parse_err(text: &str) -> (usize, usize, String) {
    match parse(text, Path::new("/etc/gobs.toml")).unwrap_err() {
        ConfigError::Invalid {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_init_file_parses_to_the_defaults() {
    assert_eq!(
        parse(DEFAULT_CONFIG_TOML, Path::new("x")).unwrap(),
        Config::default()
    );
}

#[test]
fn an_empty_file_is_the_defaults() {
    assert_eq!(parse("", Path::new("x")).unwrap(), Config::default());
}

#[test]
fn unknown_key_names_file_line_and_column() {
    let err = parse(
        "default_provider = \"dummy\"\n\n[store]\nknid = \"log\"\n",
        Path::new("/etc/gobs.toml"),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/etc/gobs.toml"), "{msg}");
    assert!(msg.contains("line 4, column 1"), "{msg}");
    assert!(msg.contains("unknown field `knid`"), "{msg}");
    assert!(msg.contains("4 | knid = \"log\""), "{msg}");
}

#[test]
fn wrong_type_points_at_the_value() {
    let (line, column, message) = parse_err("[store]\ndurability = 5\n");
    assert_eq!((line, column), (2, 14));
    assert!(message.contains("invalid type: integer `5`"), "{message}");
    assert!(message.contains("expected a string"), "{message}");
}

#[test]
fn unknown_enum_value_is_an_error() {
    let (line, column, message) = parse_err("[providers.x]\nkind = \"cloud\"\n");
    assert_eq!((line, column), (2, 8));
    assert!(
        message.contains(r#"unknown provider kind "cloud", expected one of "dummy", "local""#),
        "{message}"
    );
}

#[test]
fn default_provider_must_be_enabled_and_the_error_lists_them() {
    let (line, column, message) = parse_err("default_provider = \"aws\"\n");
    assert_eq!((line, column), (1, 20));
    assert!(
        message.contains("enabled providers: container, dummy, local, qemu"),
        "{message}"
    );

    let (_, _, message) = parse_err(
        "default_provider = \"local\"\n[providers.local]\nkind = \"process\"\nenabled = false\n[providers.d]\nkind = \"dummy\"\n",
    );
    assert!(message.contains("enabled providers: d"), "{message}");
}

#[test]
fn replacing_providers_without_dummy_needs_a_default() {
    let (_, _, message) = parse_err("[providers.local]\nkind = \"process\"\n");
    assert!(
        message.contains("set default_provider to one of: local"),
        "{message}"
    );
    let config = parse(
        "default_provider = \"local\"\n[providers.local]\nkind = \"process\"\ncommand = \"/bin/sh\"\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(config.providers.len(), 1);
    // `process` is the local kind's earlier name.
    assert_eq!(config.providers["local"].kind, "local");
    assert_eq!(
        config.providers["local"].settings["command"].as_str(),
        Some("/bin/sh")
    );
}

#[test]
fn each_kind_checks_its_own_keys_with_positions() {
    let (line, column, message) = parse_err(
        "default_provider = \"local\"\n[providers.local]\nkind = \"local\"\nrun_timeout = \"forever\"\n",
    );
    assert_eq!((line, column), (4, 15), "{message}");
    assert!(message.contains("is not a duration"), "{message}");
    let (line, _, message) = parse_err(
        "default_provider = \"local\"\n[providers.local]\nkind = \"local\"\nuid_bsae = 5\n",
    );
    assert_eq!(line, 4);
    assert!(message.contains("unknown field `uid_bsae`"), "{message}");
    let config = parse(
        "[providers.slow]\nkind = \"dummy\"\ncreate_delay = \"1m 30s\"\n[providers.dummy]\nkind = \"dummy\"\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(
        config.providers["slow"].settings["create_delay"].as_str(),
        Some("1m 30s")
    );
}

#[test]
fn a_kinds_own_rules_are_checked_when_reading() {
    let (line, _, message) = parse_err(
        "default_provider = \"local\"\n[providers.local]\nkind = \"local\"\nuid_count = 0\n",
    );
    assert_eq!(line, 2, "{message}");
    assert!(
        message.contains("uid_count must be at least 1"),
        "{message}"
    );
}

#[test]
fn daemon_limits_read_durations() {
    let config = parse("[daemon]\nrequest_timeout = \"2m\"\n", Path::new("x")).unwrap();
    assert_eq!(config.daemon.request_timeout, Duration::from_secs(120));
    let (line, _, message) = parse_err("[daemon]\nmax_connections = 0\n");
    assert_eq!(line, 2);
    assert!(message.contains("at least 1"), "{message}");
}

#[test]
fn a_file_that_is_not_utf8_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, b"[store]\nkind = \"l\xffog\"\n").unwrap();
    match load(&path).unwrap_err() {
        ConfigError::Invalid {
            line,
            column,
            message,
            ..
        } => {
            assert_eq!((line, column), (2, 10));
            assert!(message.contains("not UTF-8"), "{message}");
            assert!(message.contains("0xff"), "{message}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn no_enabled_provider_is_an_error() {
    let (_, _, message) = parse_err("[providers.dummy]\nkind = \"dummy\"\nenabled = false\n");
    assert!(message.contains("no provider is enabled"), "{message}");
}

#[test]
fn group_limits_need_group_durability() {
    let (line, _, message) = parse_err("[store]\ngroup_max_commits = 8\n");
    assert_eq!(line, 2);
    assert!(message.contains("durability = \"group\""), "{message}");
    let config = parse(
        "[store]\nkind = \"sqlite\"\ndurability = \"group\"\ngroup_max_delay_ms = 5\n",
        Path::new("x"),
    )
    .unwrap();
    let group = Durability::Group {
        max_commits: DEFAULT_GROUP_MAX_COMMITS,
        max_delay: Duration::from_millis(5),
    };
    assert_eq!(config.store.kind, StoreKind::Sqlite(group));
    assert_eq!(config.store.durability(), group);
    let (_, _, message) = parse_err("[store]\ndurability = \"group\"\ngroup_max_commits = 0\n");
    assert!(message.contains("at least 1"), "{message}");
}

#[test]
fn command_is_only_for_local_providers() {
    let (line, _, message) =
        parse_err("[providers.dummy]\nkind = \"dummy\"\ncommand = \"/bin/sh\"\n");
    assert_eq!(line, 3);
    assert!(message.contains("unknown field `command`"), "{message}");
}

#[test]
fn provider_names_are_checked() {
    let (line, _, message) = parse_err("[providers.\"my dummy\"]\nkind = \"dummy\"\n");
    assert_eq!(line, 1);
    assert!(message.contains("my dummy"), "{message}");
}

#[test]
fn syntax_errors_have_a_location_too() {
    let (line, column, _) = parse_err("a = 1\nb = = 2\n");
    assert_eq!(line, 2);
    assert!(column > 1);
}

#[test]
fn columns_count_characters_not_bytes() {
    let (line, column, _) = parse_err("# é\n[store]\nkind = 1\n");
    assert_eq!((line, column), (3, 8));
    let (_, column, _) = parse_err("[providers.é]\nkind = \"dummy\"\n");
    assert_eq!(column, 12);
}

#[test]
fn a_missing_explicit_file_is_an_error_but_a_missing_default_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = load_effective(Some(&missing), &missing).unwrap_err();
    assert!(err.to_string().contains("gobs-app init"), "{err}");
    assert_eq!(
        load_effective(None, &missing).unwrap(),
        Config::for_this_host()
    );
}
