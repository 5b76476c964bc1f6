//! A grant in a vat of its own with a fake route: what it lets through, with which
//! machine, what it refuses and records, and how revoking ends a call in flight.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gobs_runtime::{Ref, Vat, spawn};

use super::model::Right;
use super::route::Route;
use super::saved::Grant;
use super::saved::ShareBook;
use crate::model::{BackendError, Cancel, MachineInfo, MachineName, RunOutput};
use crate::ops::{MachineCall, Request, Response, Run};

const HANG: Duration = Duration::from_secs(60);

/// Tells each call it got (machine, argv, its cancel switch), then waits for a release
/// when the command is `hang`.
struct Fake {
    seen: Mutex<Sender<(String, Vec<String>, Cancel)>>,
    release: Mutex<Receiver<()>>,
}

impl Route for Fake {
    fn on_machine(
        &self,
        cancel: &Cancel,
        call: Arc<dyn MachineCall>,
    ) -> Result<Response, BackendError> {
        let Request::Run(run) = call.request() else {
            return Err(BackendError::invalid("the fake runs only"));
        };
        let seen = (
            call.machine().to_string(),
            run.command.clone(),
            cancel.clone(),
        );
        self.seen.lock().unwrap().send(seen).unwrap();
        if run.command == ["hang"] {
            let _ = self.release.lock().unwrap().recv_timeout(HANG);
        }
        Ok(Response::Run(RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: run.command.join(" "),
            stderr: String::new(),
            truncated: false,
        }))
    }

    fn machine(&self, name: &MachineName) -> Result<MachineInfo, BackendError> {
        Err(BackendError::unknown_machine(name.as_str(), []))
    }
}

struct Setup {
    vat: Vat,
    book: Ref<ShareBook>,
    grant: Ref<Grant>,
    seen: Receiver<(String, Vec<String>, Cancel)>,
    release: Sender<()>,
}

fn setup(rights: Vec<Right>, expires_at: Option<u64>) -> Setup {
    let (seen_tx, seen) = channel();
    let (release, release_rx) = channel();
    let fake = Arc::new(Fake {
        seen: Mutex::new(seen_tx),
        release: Mutex::new(release_rx),
    });
    let vat = Vat::spawn("shares-test").unwrap();
    let book = vat.run(|| spawn(ShareBook::empty())).unwrap();
    let route: Arc<dyn Route> = fake;
    book.send_with(move |b| b.use_route(route)).wait().unwrap();
    let (_, grant) = book
        .send()
        .add("m1".into(), rights, "note".into(), expires_at)
        .wait()
        .unwrap();
    Setup {
        vat,
        book,
        grant,
        seen,
        release,
    }
}

fn run_request(machine: &str, command: &[&str]) -> String {
    let run = Run {
        name: machine.parse().unwrap(),
        command: command.iter().map(|c| c.to_string()).collect(),
        timeout: None,
        raw: false,
        stream: true,
        terminal: false,
        tty: None,
        io: None,
    };
    serde_json::to_string(&Request::Run(run)).unwrap()
}

fn answer(json: String) -> Response {
    serde_json::from_str(&json).unwrap()
}

fn refusal(response: Response) -> String {
    match response {
        Response::Error(e) => e.message,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn a_grant_runs_on_its_own_machine_and_refuses_what_it_does_not_allow() {
    let s = setup(vec![Right::Run], None);
    // The request names another machine: the grant's goes instead.
    let ran = s
        .grant
        .send()
        .run(run_request("other", &["id"]))
        .wait()
        .unwrap();
    assert!(matches!(answer(ran), Response::Run(r) if r.stdout == "id"));
    let (machine, argv, _) = s.seen.recv_timeout(HANG).unwrap();
    assert_eq!((machine.as_str(), argv), ("m1", vec!["id".to_string()]));

    let put = r#"{"op":"put-file","name":"m1","path":"/x","mode":420,"content":""}"#;
    let refused = refusal(answer(s.grant.send().put_file(put.into()).wait().unwrap()));
    assert!(
        refused.contains("does not allow `put-file` (it allows run)"),
        "{refused}"
    );
    // A run request sent as another operation is refused too.
    let wrong = s
        .grant
        .send()
        .put_file(run_request("m1", &["id"]))
        .wait()
        .unwrap();
    assert!(matches!(answer(wrong), Response::Error(_)));
    let refused = refusal(answer(s.grant.send().status().wait().unwrap()));
    assert!(refused.contains("does not allow `status`"), "{refused}");

    let uses = s.book.send().uses().wait().unwrap();
    let ops: Vec<(&str, bool)> = uses
        .iter()
        .map(|u| (u.op.as_str(), u.refused.is_some()))
        .collect();
    assert_eq!(
        ops,
        [
            ("run", false),
            ("put-file", true),
            ("put-file", true),
            ("status", true)
        ]
    );
    let info = s.grant.send().info().wait().unwrap();
    assert_eq!((info.uses, info.last_use.is_some()), (1, true));
    drop(s.vat);
}

#[test]
fn revoking_ends_a_call_in_flight_and_refuses_every_later_one() {
    let s = setup(vec![Right::Run], None);
    let hanging = s.grant.send().run(run_request("m1", &["hang"]));
    let (_, _, cancel) = s.seen.recv_timeout(HANG).unwrap();
    assert!(!cancel.is_cancelled());
    let revoked = s.book.send().revoke("s1".into()).wait().unwrap();
    assert!(revoked.revoked_at.is_some());
    let refused = refusal(answer(hanging.wait().unwrap()));
    assert!(refused.contains("share s1 was revoked"), "{refused}");
    assert!(cancel.is_cancelled(), "the call in flight was cancelled");
    s.release.send(()).unwrap();

    let refused = refusal(answer(
        s.grant
            .send()
            .run(run_request("m1", &["id"]))
            .wait()
            .unwrap(),
    ));
    assert!(refused.contains("was revoked"), "{refused}");
    let err = s.book.send().revoke("s7".into()).wait().unwrap_err();
    assert!(
        BackendError::from(err)
            .message
            .contains("no share with id \"s7\"")
    );
    drop(s.vat);
}

#[test]
fn an_expired_grant_refuses() {
    let s = setup(vec![Right::Run], Some(1));
    let refused = refusal(answer(
        s.grant
            .send()
            .run(run_request("m1", &["id"]))
            .wait()
            .unwrap(),
    ));
    assert!(
        refused.contains("share s1 expired at 1970-01-01T00:00:01Z"),
        "{refused}"
    );
    assert!(s.seen.try_recv().is_err(), "nothing reached the machine");
    drop(s.vat);
}

#[test]
fn the_use_log_keeps_its_last_entries() {
    let s = setup(vec![Right::Status], Some(1));
    for _ in 0..super::book::MAX_USES + 5 {
        s.grant.send().status().wait().unwrap();
    }
    let uses = s.book.send().uses().wait().unwrap();
    assert_eq!(uses.len(), super::book::MAX_USES);
    drop(s.vat);
}

/// A grant's streams: at most `MAX_STREAMS` whose requests run, and the ones that are over
/// give way to new ones even when their holder never finished them (it went away); the
/// answer of a stream is its request's.
#[test]
fn streams_are_bounded_and_the_ones_that_are_over_give_way() {
    use super::stream::MAX_STREAMS;

    let s = setup(vec![Right::Run], None);
    // Twice as many as the bound, each left unfinished once over.
    for _ in 0..2 * MAX_STREAMS {
        let id = s
            .grant
            .send()
            .open(run_request("m1", &["id"]))
            .wait()
            .unwrap();
        let (_, over) = s.grant.send().output(id).wait().unwrap();
        assert!(over, "a stream whose request ended is over");
    }
    let id = s
        .grant
        .send()
        .open(run_request("m1", &["id"]))
        .wait()
        .unwrap();
    match answer(s.grant.send().finish(id).wait().unwrap()) {
        Response::Run(out) => assert_eq!(out.stdout, "id"),
        other => panic!("not a run's answer: {other:?}"),
    }

    // Requests still running hold their places: one more is refused, saying why.
    let hanging: Vec<u64> = (0..MAX_STREAMS)
        .map(|_| {
            let id = s
                .grant
                .send()
                .open(run_request("m1", &["hang"]))
                .wait()
                .unwrap();
            s.seen.recv_timeout(HANG).unwrap();
            id
        })
        .collect();
    let id = s
        .grant
        .send()
        .open(run_request("m1", &["id"]))
        .wait()
        .unwrap();
    let refused = refusal(answer(s.grant.send().finish(id).wait().unwrap()));
    assert!(
        refused.contains(&format!("has {MAX_STREAMS} streams running")),
        "{refused}"
    );
    for _ in hanging {
        s.release.send(()).unwrap();
    }
    drop(s.vat);
}
