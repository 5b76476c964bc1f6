//! Sharing a machine: `gobs-app share` prints a URI that another process (with no state
//! directory nor daemon socket, in another network namespace where it can) uses with
//! `gobs-app --connect URI …`; it does only what the share allows, until `revoke` (which
//! also ends a command in flight) or its expiry, and a boss restart keeps the revocation.
//! Every use is in `shares --log`. Machines are of the `host` provider: real commands,
//! no root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::fleet::Net;
use common::{Daemon, bare, ok, state, text, wait_for};

/// The config: machines of the `host` provider, the boss's node listening at `listen`.
fn configure(boss: &Path, listen: &str) {
    std::fs::write(
        boss.join("config.toml"),
        format!(
            "default_provider = \"host\"\n[providers.host]\nkind = \"host\"\n\
             hob_listen = \"127.0.0.1:0\"\n[hosts]\nlisten = \"{listen}\"\n"
        ),
    )
    .unwrap();
}

/// Destroys machine `m1` of the boss when dropped (before its daemon, declared after
/// it), also when the test fails: a `host` machine's hob-client outlives its daemon.
struct DestroysM1<'a>(&'a Path);

impl Drop for DestroysM1<'_> {
    fn drop(&mut self) {
        let _ = common::gobs(self.0, &["destroy-machine", "m1"]);
    }
}

/// `share ARGS… --json`: (id, URI).
fn share(boss: &Path, args: &[&str]) -> (String, String) {
    let mut all = vec!["share"];
    all.extend_from_slice(args);
    all.push("--json");
    let json: serde_json::Value = serde_json::from_str(&ok(boss, &all)).unwrap();
    let uri = json["uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("ocapn://"), "{uri}");
    (json["share"]["id"].as_str().unwrap().to_string(), uri)
}

/// `gobs-app --connect URI ARGS…` with no state directory nor config (in network
/// namespace `netns`, if any), from a working directory of its own.
fn connect_command(netns: Option<&str>, uri: &str, args: &[&str]) -> Command {
    let mut cmd = match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns]).arg(common::bin());
            for (key, value) in bare().get_envs() {
                match value {
                    Some(v) => cmd.env(key, v),
                    None => cmd.env_remove(key),
                };
            }
            cmd
        }
        None => bare(),
    };
    cmd.arg("--connect")
        .arg(uri)
        .args(args)
        .stdin(Stdio::null());
    cmd
}

fn connect(netns: Option<&str>, uri: &str, args: &[&str]) -> Output {
    connect_command(netns, uri, args).output().unwrap()
}

/// A use that must be refused: its stderr.
fn refused(netns: Option<&str>, uri: &str, args: &[&str]) -> String {
    let out = connect(netns, uri, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "--connect {args:?} should be refused:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// `shares --json`, the grant `id`.
fn grant(boss: &Path, id: &str) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(&ok(boss, &["shares", "--json"])).unwrap();
    json["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no share {id} in {json}"))
}

/// `shares --log --json`: (share, op, refused) of each use, oldest first.
fn uses(boss: &Path) -> Vec<(String, String, bool)> {
    let json: serde_json::Value =
        serde_json::from_str(&ok(boss, &["shares", "--log", "--json"])).unwrap();
    json["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["grant"].as_str().unwrap().to_string(),
                u["op"].as_str().unwrap().to_string(),
                u.get("refused").is_some(),
            )
        })
        .collect()
}

/// The whole story, from a process in `netns` (or this namespace): a run-only share runs
/// a command and is refused put-file; revoking ends a command in flight and refuses the
/// share from then on, across a boss restart; an expired share is refused; the log shows
/// every use.
fn a_run_only_share(boss: &Path, netns: Option<&str>) {
    let mut daemon = Daemon::start(boss);
    ok(boss, &["create-machine", "m1"]);
    let destroys = DestroysM1(boss);
    let (id, uri) = share(boss, &["m1", "--allow", "run", "--note", "ci job"]);

    let out = connect(netns, &uri, &["run", "--", "echo", "hello from a share"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from a share\n");
    let local = tempfile::NamedTempFile::new().unwrap();
    let path = local.path().to_str().unwrap();
    let err = refused(netns, &uri, &["put-file", path, "/tmp/shared-file"]);
    assert!(err.contains("does not allow `put-file`"), "{err}");
    let row = grant(boss, &id);
    assert_eq!(row["machine"], "m1");
    assert_eq!(row["note"], "ci job");
    assert_eq!(row["rights"], serde_json::json!(["run"]));
    assert_eq!(row["uses"], 1);
    assert!(row["last_use"].is_u64(), "{row}");

    // A command in flight ends, refused, when the share is revoked.
    let running = connect_command(netns, &uri, &["run", "--", "sleep", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the shared run to begin", || grant(boss, &id)["uses"] == 2);
    ok(boss, &["revoke", &id]);
    let ended = running.wait_with_output().unwrap();
    assert_eq!(ended.status.code(), Some(1), "{}", text(&ended.stdout));
    assert!(
        text(&ended.stderr).contains("was revoked"),
        "{}",
        text(&ended.stderr)
    );
    let err = refused(netns, &uri, &["run", "--", "true"]);
    assert!(err.contains(&format!("share {id} was revoked")), "{err}");

    // A restart keeps the revocation (and the share's URI still reaches the boss).
    let (status, _) = daemon.stop("TERM");
    assert!(status.success());
    daemon = Daemon::start(boss);
    let err = refused(netns, &uri, &["run", "--", "true"]);
    assert!(err.contains("was revoked"), "{err}");

    // A share that expired is refused.
    let (expiring, uri) = share(boss, &["m1", "--allow", "run,status", "--expires", "1s"]);
    wait_for("the share to expire", || {
        let out = connect(netns, &uri, &["status"]);
        !out.status.success() && text(&out.stderr).contains("expired")
    });
    let err = refused(netns, &uri, &["run", "--", "true"]);
    assert!(err.contains(&format!("share {expiring} expired")), "{err}");

    // The log has every use, in order: who, what, and whether it was refused.
    let log = uses(boss);
    let first: Vec<(String, String, bool)> = log.iter().take(5).cloned().collect();
    let run = |refused| (id.clone(), "run".to_string(), refused);
    assert_eq!(
        first,
        [
            run(false),
            (id.clone(), "put-file".into(), true),
            run(false),
            run(true),
            run(true),
        ]
    );
    assert!(log[5..].iter().all(|(g, _, _)| *g == expiring), "{log:?}");
    assert!(log.last().unwrap().2, "the last use was refused: {log:?}");
    let listed = ok(boss, &["shares"]);
    assert!(
        listed.contains("ci job") && listed.contains("revoked"),
        "{listed}"
    );

    // A destroyed machine's shares are revoked: they never reach a later one of its name.
    let (kept, uri) = share(boss, &["m1", "--allow", "run"]);
    ok(boss, &["destroy-machine", "m1"]);
    ok(boss, &["create-machine", "m1"]);
    let err = refused(netns, &uri, &["run", "--", "true"]);
    assert!(err.contains(&format!("share {kept} was revoked")), "{err}");
    drop(destroys);
    drop(daemon);
}

#[test]
fn a_run_only_share_used_from_another_process() {
    let boss = state();
    configure(boss.path(), "127.0.0.1:0");
    a_run_only_share(boss.path(), None);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root and iproute2 (network namespaces): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_run_only_share_used_from_another_network_namespace() {
    gobs_testkit::need(&[
        gobs_testkit::Need::Root,
        gobs_testkit::Need::Command("ip", "iproute2"),
    ]);
    let net = Net::new(1);
    let boss = state();
    configure(boss.path(), &format!("{}:0", net.boss_ip()));
    a_run_only_share(boss.path(), Some(&net.netns(0)));
}

/// A share streams as the command line does: a run's output comes as it is made (a line
/// is read before the command ends), standard input reaches the command, the exit code
/// comes back; files and trees of any size go both ways, checked, modes kept.
#[test]
fn a_share_streams_runs_and_copies_of_any_size() {
    use std::io::{BufRead, BufReader, Write};

    let boss = state();
    let b = boss.path();
    configure(b, "127.0.0.1:0");
    let _daemon = Daemon::start(b);
    ok(b, &["create-machine", "m1"]);
    let _destroys = DestroysM1(b);
    let rights = "run,put-file,get-file";
    let (_, uri) = share(b, &["m1", "--allow", rights]);

    // A line before the command ends: it waits for its standard input to close.
    let mut running = connect_command(None, &uri, &["run", "--", "sh", "-c", "echo first; cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(running.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    let mut stdin = running.stdin.take().unwrap();
    stdin.write_all(b"second\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "second");
    drop(stdin);
    assert!(lines.next().is_none());
    assert!(running.wait().unwrap().success());
    let exit = connect(None, &uri, &["run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(exit.status.code(), Some(7));

    // 3 MiB through standard input and back, and as files both ways.
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    let local = dir.path().join("big");
    std::fs::write(&local, &big).unwrap();
    let mut cat = connect_command(None, &uri, &["run", "--", "cat"])
        .stdin(std::fs::File::open(&local).unwrap())
        .output()
        .unwrap();
    assert!(cat.status.success(), "{}", text(&cat.stderr));
    assert!(
        std::mem::take(&mut cat.stdout) == big,
        "cat gave back other bytes"
    );
    let remote = dir.path().join("on-m1");
    let remote = remote.to_str().unwrap();
    let put = connect(None, &uri, &["put-file", local.to_str().unwrap(), remote]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    let back = dir.path().join("back");
    let got = connect(None, &uri, &["get-file", remote, back.to_str().unwrap()]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert!(
        std::fs::read(&back).unwrap() == big,
        "the copy came back changed"
    );

    // A tree, its modes kept.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/run.sh"), b"#!/bin/sh\n").unwrap();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    std::fs::set_permissions(
        tree.join("sub/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();
    let (tree_s, remote_tree) = (tree.to_str().unwrap(), format!("{remote}-tree"));
    let put = connect(None, &uri, &["put-file", "-r", tree_s, &remote_tree]);
    assert!(put.status.success(), "{}", text(&put.stderr));
    let tree_back = dir.path().join("tree-back");
    let got = connect(
        None,
        &uri,
        &["get-file", "-r", &remote_tree, tree_back.to_str().unwrap()],
    );
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert_eq!(
        std::fs::read(tree_back.join("sub/run.sh")).unwrap(),
        b"#!/bin/sh\n"
    );
    assert_eq!(mode(&tree_back.join("sub/run.sh")), 0o751);
}

#[test]
fn sharing_refuses_what_it_cannot_do() {
    let boss = state();
    configure(boss.path(), "127.0.0.1:0");
    let _daemon = Daemon::start(boss.path());
    let err = common::fails(boss.path(), &["share", "nothing", "--allow", "run"]);
    assert!(err.contains("nothing"), "{err}");
    let err = common::fails(boss.path(), &["revoke", "s9"]);
    assert!(err.contains("s9"), "{err}");
    let out = ok(boss.path(), &["shares"]);
    assert!(out.contains("no shares"), "{out}");
    // A URI that names nothing the boss published.
    ok(boss.path(), &["create-machine", "m1"]);
    let _destroys = DestroysM1(boss.path());
    let (_, uri) = share(boss.path(), &["m1", "--allow", "status"]);
    let out = connect(None, &uri, &["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["name"], "m1");
    // Another swiss number on the same node: an object it never published.
    let at = uri.find("/s/").unwrap() + 3;
    let other = if uri[at..].starts_with('A') { "B" } else { "A" };
    let forged = format!("{}{other}{}", &uri[..at], &uri[at + 1..]);
    let err = refused(None, &forged, &["status"]);
    assert!(err.contains("cannot reach the share"), "{err}");
}
