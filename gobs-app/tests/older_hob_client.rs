//! A machine whose hob-client predates streamed runs (a container made before an upgrade
//! keeps its binary): the boss asks `run-stream`, is told the machine has no such binding,
//! and runs the command the older way (`run`, the whole answer at the end), through the
//! daemon, black-box; asked for a terminal (`run-terminal`), the command fails telling the
//! user to recreate the machine; likewise copies predate streamed copies (`put-stream`,
//! `get-stream`): the boss copies a file of up to the old 512 KiB whole, and refuses more,
//! or a tree, saying why. The older client is played by the test, with the machine's
//! identity and attach sturdyref, answering as that release's hob-client did.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/host.rs"]
mod host;
#[path = "common/machine_node.rs"]
mod machine_node;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{gobs, ok, text, wait_for};

use gobs_app::files::MAX_FILE;
use gobs_app::hob_net::wire;
use gobs_app::model::RunOutput;
use gobs_app::ops::get_file::Got;
use gobs_app::ops::{GetFile, MachineOp, PutFile, Run};
use gobs_ocapn::captp::Term;
use gobs_ocapn::node::{Cx, LocalObject};
use machine_node::attach_as;

/// The bindings of a hob-client of the release before streamed runs: its files, by path.
struct Older(Files);

/// The files an older client was given: bytes and mode, by path.
type Files = Arc<Mutex<HashMap<String, (Vec<u8>, u32)>>>;

impl LocalObject for Older {
    fn deliver(&mut self, _cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let (name, args) = wire::method(args)?;
        match name.as_str() {
            "run" => {
                let (argv, _) = Run::read_args(&args).map_err(|e| wire::text(&e))?;
                Ok(Run::reply_term(&RunOutput {
                    exit_code: Some(3),
                    signal: None,
                    stdout: format!("older ran {}\n", argv.join(" ")),
                    stderr: "a warning\n".into(),
                    truncated: false,
                }))
            }
            "put-file" => {
                let (path, bytes, mode) = PutFile::read_args(&args).map_err(|e| wire::text(&e))?;
                self.0.lock().unwrap().insert(path, (bytes, mode));
                Ok(PutFile::reply_term(&None))
            }
            "get-file" => {
                let path = GetFile::read_args(&args).map_err(|e| wire::text(&e))?;
                let files = self.0.lock().unwrap();
                let (content, _) = files.get(&path).ok_or_else(|| wire::text("no such file"))?;
                Ok(GetFile::reply_term(&Got {
                    content: content.clone(),
                    ..Got::default()
                }))
            }
            // That release's words for a binding it does not have.
            other => Err(wire::text(&format!(
                "this machine has no binding `{other}` (it has run, put-file, get-file)"
            ))),
        }
    }
}

fn status(s: &Path) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&ok(s, &["machine", "h1", "--json"])).unwrap();
    json["status"].as_str().unwrap().to_string()
}

#[test]
fn run_on_a_machine_whose_hob_client_cannot_stream_gives_the_whole_answer() {
    let (dir, daemon, real) = host::with_machine(host::CONFIG, "h1", &[]);
    let s = dir.path();
    real.kill();
    wait_for("h1 to be unreachable", || status(s) == "unreachable");
    let files = Arc::default();
    let _older = attach_as(&s.join("hosts/h1/client"), "h1", Older(Arc::clone(&files)));
    wait_for("the older client to be h1", || status(s) == "running");

    let out = gobs(s, &["run", "h1", "--", "echo", "hi"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "older ran echo hi\n");
    assert_eq!(text(&out.stderr), "a warning\n");
    let out = gobs(s, &["run", "h1", "--json", "--", "echo", "hi"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["stdout"], "older ran echo hi\n");
    assert_eq!(json["exit_code"], 3);

    // A file up to the old limit is copied whole, both ways, with its mode.
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small");
    let bytes: Vec<u8> = (0..MAX_FILE).map(|i| (i % 253) as u8).collect();
    fs::write(&small, &bytes).unwrap();
    fs::set_permissions(&small, fs::Permissions::from_mode(0o640)).unwrap();
    ok(
        s,
        &["put-file", "h1", small.to_str().unwrap(), "/srv/small"],
    );
    assert_eq!(
        files.lock().unwrap().get("/srv/small"),
        Some(&(bytes.clone(), 0o640))
    );
    let back = work.path().join("back");
    ok(s, &["get-file", "h1", "/srv/small", back.to_str().unwrap()]);
    assert!(fs::read(&back).unwrap() == bytes);
    let out = gobs(s, &["get-file", "h1", "/srv/small"]);
    assert!(out.stdout == bytes, "{}", text(&out.stderr));

    // More, or a tree: refused, saying why and what to do; nothing written.
    fs::write(&small, vec![1u8; MAX_FILE + 1]).unwrap();
    let err = common::fails(s, &["put-file", "h1", small.to_str().unwrap(), "/srv/big"]);
    assert!(
        err.contains("machine h1 runs a hob-client from before streamed copies")
            && err.contains("524289 bytes")
            && err.contains("create the machine again"),
        "{err}"
    );
    let err = common::fails(s, &["get-file", "-r", "h1", "/srv", back.to_str().unwrap()]);
    assert!(err.contains("cannot copy a directory"), "{err}");
    assert!(!files.lock().unwrap().contains_key("/srv/big"));

    // `run -t` (on the control socket: the command line would want a terminal).
    let answer = common::run_in_terminal(&daemon.socket, "h1", &["sh"]);
    assert!(answer.contains("\"type\":\"error\""), "{answer}");
    assert!(answer.contains("predates terminals"), "{answer}");
    assert!(answer.contains("recreate the machine"), "{answer}");
}
