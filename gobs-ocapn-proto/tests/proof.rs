//! A session is trusted for the location its netlayer proved, never for the one its peer
//! only claims: an unproven claim neither replaces nor refuses a proved session, a proved
//! one replaces an unproven squatter, and what the node sends to a location never goes
//! over a session that only claims it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gobs_ocapn_proto::captp::{DuplicateSession, SessionConfig};
use gobs_ocapn_proto::fixtures::*;
use gobs_ocapn_proto::locator::Sturdyref;
use gobs_ocapn_proto::node::PeerProof;

fn proved(tag: &str) -> PeerProof {
    PeerProof::Proved {
        transport: "tcp-testing-only".into(),
        designator: tag.into(),
    }
}

fn aborted_because(p: &mut Peer) -> String {
    format!("{:?}", p.expect("op:abort"))
}

#[test]
fn an_unproven_claim_cannot_replace_a_proved_session_even_with_replace_old() {
    let (net, node) = start_with(SessionConfig {
        duplicate_session: DuplicateSession::ReplaceOld,
        ..SessionConfig::default()
    });
    let mut real = net.connect_proving(&node, my_location("m1", 1), proved("m1"));
    real.setup();
    let greeter = real.fetch(GREETER);
    for proof in [PeerProof::Unproved, proved("someone-else")] {
        let mut fake = net.connect_proving(&node, my_location("m1", 1), proof);
        fake.setup();
        let why = aborted_because(&mut fake);
        assert!(why.contains("only"), "{why}");
        assert!(why.contains("claims it"), "{why}");
    }
    assert_eq!(node.sessions_with("m1"), 1);
    assert_eq!(greeted(&mut real, greeter).1, vec!["Hello".into()]);
    // The real peer reconnecting (a proved session) still replaces its old one.
    let mut again = net.connect_proving(&node, my_location("m1", 1), proved("m1"));
    again.setup();
    let why = aborted_because(&mut real);
    assert!(why.contains("replaced by a newer session"), "{why}");
    again.fetch(GREETER);
}

#[test]
fn a_proved_session_replaces_an_unproven_squatter_even_with_refuse_new() {
    let (net, node) = start();
    let mut squatter = net.connect_proving(&node, my_location("m1", 1), PeerProof::Unproved);
    squatter.setup();
    squatter.fetch(GREETER);
    let mut real = net.connect_proving(&node, my_location("m1", 1), proved("m1"));
    real.setup();
    let why = aborted_because(&mut squatter);
    assert!(why.contains("proved the location"), "{why}");
    let greeter = real.fetch(GREETER);
    assert_eq!(greeted(&mut real, greeter).1, vec!["Hello".into()]);
}

#[test]
fn the_node_dials_a_location_rather_than_use_a_session_that_only_claims_it() {
    let (net, node) = start();
    let location = my_location("m1", 9);
    let listener = net.listen(location.clone());
    let mut squatter = net.connect_proving(&node, location.clone(), PeerProof::Unproved);
    squatter.setup();
    // Its session is open (the node answered it) before the node needs the location.
    squatter.fetch(GREETER);
    let sturdyref = Sturdyref {
        peer: gobs_ocapn_proto::locator::PeerLocator::from_value(&location).unwrap(),
        swiss: b"secret".to_vec(),
    };
    node.enliven(&sturdyref);
    // The fetch goes to a connection the node dialed, not to the squatter.
    let mut dialed = listener.accept();
    dialed.setup();
    let fetch = dialed.expect("op:deliver");
    assert!(format!("{fetch:?}").contains("fetch"), "{fetch:?}");
    while let Some(heard) = squatter.try_recv() {
        assert!(
            !format!("{heard:?}").contains("secret"),
            "the squatter was asked: {heard:?}"
        );
    }
}
