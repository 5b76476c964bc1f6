//! gobs on default settings and a real Goblins 0.18 over time: sturdyrefs enlivened again
//! after either side restarts, and distributed GC over 10,000 calls each way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "goblins/harness.rs"]
mod harness;

use std::time::Instant;

use gobs_ocapn::captp::Term;
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::netlayer::TlsIdentity;
use gobs_ocapn::syrup::Value;
use gobs_testkit::Need;
use harness::{DEADLINE, Goblins, Gobs, Reply, msg, runtime};

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn a_goblins_sturdyref_is_enlivened_again_after_goblins_restarts() {
    gobs_testkit::need(&[Need::Goblins]);
    let rt = runtime();
    let goblins = Goblins::fresh();
    let gobs = rt.block_on(Gobs::start());
    let echo = goblins.sturdyref("echo");
    let first = rt.block_on(gobs.call(&echo, msg("echo", &[Term::str("before")])));
    assert_eq!(first, Ok(Term::str("before")));
    // A call that is never answered: it breaks when the session ends, which tells gobs'
    // side has seen the restart.
    let never = rt.block_on(gobs.core({
        let echo = echo.clone();
        move |core| {
            let target = core.enliven(&echo);
            core.send(gobs_ocapn::captp::CapRef::Local(target), msg("never", &[]))
        }
    }));
    let goblins = goblins.restart();
    assert_eq!(
        goblins.sturdyref("echo"),
        echo,
        "same identity, port and swiss"
    );
    let severed = rt.block_on(gobs.settled(never));
    assert!(
        severed.is_err(),
        "the pending call breaks with the session: {severed:?}"
    );
    let again = rt.block_on(gobs.call(&echo, msg("echo", &[Term::str("after")])));
    assert_eq!(
        again,
        Ok(Term::str("after")),
        "the pending call broke with {severed:?}"
    );
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn a_gobs_sturdyref_is_enlivened_again_after_gobs_restarts() {
    gobs_testkit::need(&[Need::Goblins]);
    let mut goblins = Goblins::fresh();
    let identity = TlsIdentity::generate().unwrap();
    // Each gobs node runs on a runtime of its own: dropping the runtime ends the node, its
    // listener and its connections, as a process exit would.
    let rt = runtime();
    let gobs = rt.block_on(Gobs::start_as(identity.clone(), 0));
    let (uri, port) = (gobs.uri(), gobs.port);
    assert_eq!(
        goblins.call(&uri, "echo", &[Value::from("before")]),
        Reply::Ok(Value::from("before"))
    );
    drop(gobs);
    drop(rt);
    let rt = runtime();
    let gobs = rt.block_on(Gobs::start_as(identity, port));
    assert_eq!(gobs.uri(), uri, "same identity, port and swiss");
    // A Goblins 0.18 that had a session with the old gobs keeps writing to it (its netlayer
    // fails, its CapTP session does not end), so the sturdyref is enlivened by a Goblins
    // peer started after the restart, as a restarted client would.
    drop(goblins);
    let mut goblins = Goblins::fresh();
    assert_eq!(
        goblins.call(&uri, "echo", &[Value::from("after")]),
        Reply::Ok(Value::from("after"))
    );
}

/// How many calls each way.
const CALLS: &str = "10000";
/// "A few": what the session may still hold once both sides have collected.
const FEW: usize = 4;

/// Asks Goblins to collect garbage until gobs' tables for the peer satisfy `ok`, up to the
/// deadline. Goblins tells what it dropped (op:gc-exports, op:gc-answers) from a guardian
/// it checks once a second, after its (conservative) collector finds the garbage; each
/// round waits for Goblins' answer to `gc`, not for a fixed time.
fn collect_until(
    rt: &tokio::runtime::Runtime,
    gobs: &Gobs,
    goblins: &mut Goblins,
    peer: &PeerLocator,
    ok: impl Fn((usize, usize, usize)) -> bool,
) -> (usize, usize, usize) {
    let start = Instant::now();
    loop {
        let id = goblins.send("gc", &[]);
        assert_eq!(goblins.outcome(&id), Reply::Ok(Value::Bool(true)));
        let p = peer.clone();
        let tables = rt
            .block_on(gobs.core(move |core| core.tables_with(&p)))
            .expect("a session with the Goblins peer");
        if ok(tables) {
            return tables;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the session still holds {tables:?} (exports, imports, answers)"
        );
    }
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn ten_thousand_calls_each_way_leave_a_few_exports_and_answers() {
    gobs_testkit::need(&[Need::Goblins]);
    let rt = runtime();
    let mut goblins = Goblins::fresh();
    let gobs = rt.block_on(Gobs::start());
    let uri = gobs.uri();
    // Goblins -> gobs, one after another; each leaves gobs an answer and a resolver import.
    let id = goblins.send("many", &[CALLS, &uri, "next", &harness::args_hex(&[])]);
    assert_eq!(
        goblins.outcome_of_many(&id, 10_000),
        Reply::Ok(Value::from(10_000u32))
    );
    // gobs -> Goblins, 100 at a time; each leaves Goblins an answer and a resolver import.
    let echo = goblins.sturdyref("echo");
    let peer = echo.peer.clone();
    for batch in 0..100 {
        let promises = rt.block_on(gobs.core({
            let echo = echo.clone();
            move |core| {
                let target = core.enliven(&echo);
                (0..100)
                    .map(|i| {
                        core.send(
                            gobs_ocapn::captp::CapRef::Local(target),
                            msg("echo", &[Term::Data(Value::from(batch * 100 + i))]),
                        )
                    })
                    .collect::<Vec<_>>()
            }
        }));
        for (i, p) in promises.into_iter().enumerate() {
            let v = rt.block_on(gobs.settled(p));
            assert_eq!(v, Ok(Term::Data(Value::from(batch * 100 + i as u32))));
        }
    }
    // Goblins collects what it dropped and says so.
    let (exports, imports, answers) =
        collect_until(&rt, &gobs, &mut goblins, &peer, |(e, i, a)| {
            e <= FEW && i <= FEW && a <= FEW
        });
    eprintln!("left: {exports} exports, {imports} imports, {answers} answers");
}
