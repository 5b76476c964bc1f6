//! The pair harness itself: frames take their link's latency and the clock follows them,
//! a held link delivers nothing until released, a cut ends both sides at once, and a
//! node's timers fire only as the clock passes them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use gobs_ocapn_proto::node::HELLO_TIMEOUT;

#[test]
fn a_read_waits_for_its_frame_and_the_clock_follows() {
    let (net, node) = start();
    net.set_latency(Duration::from_millis(5));
    let t0 = net.now();
    let mut p = net.connect(&node, my_location("slow", 1));
    assert_eq!(net.elapsed(), Duration::ZERO, "connecting takes no time");
    p.setup();
    assert_eq!(
        net.now() - t0,
        Duration::from_millis(5),
        "the node's hello, read"
    );
    // A round trip: our hello and fetch there, the answer back.
    p.fetch(gobs_ocapn_proto::fixtures::GREETER);
    assert_eq!(net.elapsed(), Duration::from_millis(15));
}

#[test]
fn a_held_link_delivers_nothing_until_released() {
    let (net, node) = start();
    let mut p = open(&net, &node, "held");
    let r = p.deliver(
        export(0),
        vec![
            sym("fetch"),
            gobs_ocapn_proto::syrup::Value::Bytes(b"none".to_vec()),
        ],
        None,
    );
    net.hold(p.link());
    assert_eq!(p.try_recv(), None, "a held link carried a frame");
    net.release(p.link());
    assert_eq!(p.resolution(r)[0], sym("break"));
}

#[test]
fn a_cut_ends_both_sides_and_loses_what_was_in_flight() {
    let (net, node) = start();
    let mut p = open(&net, &node, "cut");
    p.abort("never arrives");
    net.cut(p.link());
    assert_eq!(p.recv(), None, "the peer's end is over");
    assert_eq!(node.sessions_with("cut"), 0, "the node's end is over");
}

#[test]
fn timers_fire_only_as_the_clock_passes_them() {
    let (net, node) = start();
    let mut p = net.connect(&node, my_location("quiet", 1));
    p.recv().unwrap();
    net.drive();
    assert_eq!(
        net.elapsed(),
        Duration::ZERO,
        "drive moved the clock for a timer"
    );
    assert_eq!(
        node.with_core(|c| c.poll_timeout()),
        Some(net.now() + HELLO_TIMEOUT)
    );
    net.advance(HELLO_TIMEOUT / 2);
    assert_eq!(net.elapsed(), HELLO_TIMEOUT / 2);
    assert_eq!(p.try_recv(), None);
    net.advance(HELLO_TIMEOUT / 2);
    assert_eq!(p.expect("op:abort").as_record().unwrap().0, "op:abort");
}
