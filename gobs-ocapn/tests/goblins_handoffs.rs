//! Three-party handoffs between two gobs nodes on default settings and a real Goblins 0.18
//! (separate process, tcp-tls on 127.0.0.1), with gobs as exporter, gifter and receiver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "goblins/harness.rs"]
mod harness;

use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::syrup::Value;
use gobs_testkit::Need;
use harness::{Goblins, Gobs, Reply, blocking, msg, runtime};

fn gobs_sturdyref(g: &Gobs) -> Sturdyref {
    Sturdyref::parse(&g.uri()).unwrap()
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn goblins_gives_a_gobs_object_to_another_gobs_node() {
    gobs_testkit::need(&[Need::Goblins]);
    // Exporter: gobs 1. Gifter: Goblins. Receiver: gobs 2 (it calls what it received).
    runtime().block_on(async {
        let mut goblins = blocking(Goblins::fresh);
        let exporter = Gobs::start().await;
        let receiver = Gobs::start().await;
        let (recipient, target) = (receiver.uri(), exporter.uri());
        let id = blocking(|| goblins.send("give", &[&recipient, &target]));
        let reply = blocking(|| goblins.outcome(&id));
        assert_eq!(reply, Reply::Ok(Value::from("handed")));
    });
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn gobs_gives_a_goblins_object_to_another_gobs_node() {
    gobs_testkit::need(&[Need::Goblins]);
    // Exporter: Goblins. Gifter: gobs 1. Receiver: gobs 2.
    runtime().block_on(async {
        let goblins = blocking(Goblins::fresh);
        let gifter = Gobs::start().await;
        let receiver = Gobs::start().await;
        let echo = goblins.sturdyref("echo");
        let recipient = gobs_sturdyref(&receiver);
        let p = gifter
            .core(move |core| {
                let target = core.enliven(&echo);
                let recipient = core.enliven(&recipient);
                core.send(
                    CapRef::Local(recipient),
                    msg("receive", &[Term::local(target)]),
                )
            })
            .await;
        assert_eq!(gifter.settled(p).await, Ok(Term::str("handed")));
    });
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn gobs_gives_a_gobs_object_to_goblins() {
    gobs_testkit::need(&[Need::Goblins]);
    // Exporter: gobs 1. Gifter: gobs 2. Receiver: Goblins (it calls what it received).
    runtime().block_on(async {
        let goblins = blocking(Goblins::fresh);
        let exporter = Gobs::start().await;
        let gifter = Gobs::start().await;
        let caller = goblins.sturdyref("caller");
        let target = gobs_sturdyref(&exporter);
        let p = gifter
            .core(move |core| {
                let target = core.enliven(&target);
                let caller = core.enliven(&caller);
                core.send(
                    CapRef::Local(caller),
                    msg(
                        "call-back",
                        &[
                            Term::local(target),
                            Term::sym("echo"),
                            Term::str("via Goblins"),
                        ],
                    ),
                )
            })
            .await;
        assert_eq!(gifter.settled(p).await, Ok(Term::str("via Goblins")));
    });
}
