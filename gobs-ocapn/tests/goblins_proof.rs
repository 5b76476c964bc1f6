//! Goblins 0.18 proves its location to gobs: asked for a client certificate, its tcp-tls
//! client presents its own, whose PEM hashes to the designator it claims, so gobs believes
//! the session (an impostor claiming Goblins' location could not displace it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "goblins/harness.rs"]
mod harness;

use gobs_ocapn::syrup::Value;
use gobs_testkit::Need;
use harness::{Reply, blocking, goblins_and_gobs, runtime};

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn a_goblins_peer_that_dials_gobs_proves_the_location_it_claims() {
    gobs_testkit::need(&[Need::Goblins]);
    runtime().block_on(async {
        let (mut goblins, gobs) = goblins_and_gobs().await;
        let uri = gobs.uri();
        let reply = blocking(|| goblins.call(&uri, "echo", &[Value::from("hello")]));
        assert_eq!(reply, Reply::Ok(Value::from("hello")));
        let designator = goblins.sturdyref("echo").peer.designator;
        let believed = gobs
            .core(move |core| {
                core.session_stats()
                    .into_iter()
                    .filter_map(|(_, peer, ..)| peer)
                    .filter(|p| p.designator == designator)
                    .map(|p| core.believes(&p))
                    .collect::<Vec<_>>()
            })
            .await;
        assert_eq!(believed, [true], "Goblins' one session, believed");
    });
}
