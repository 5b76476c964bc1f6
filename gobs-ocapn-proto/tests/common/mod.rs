//! What the wire-level tests share: a node with the conformance fixtures on a fresh
//! simulated network, and raw peers with an open session to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub use gobs_ocapn_proto::testing::*;

use gobs_ocapn_proto::captp::SessionConfig;
use gobs_ocapn_proto::fixtures;
use gobs_ocapn_proto::locator::PeerLocator;
use gobs_ocapn_proto::syrup::Value;

/// A network with one node, named `name`, running the fixtures.
pub fn fixture_node(net: &Net, name: &str, config: SessionConfig) -> SimNode {
    let node = net.node(PeerLocator::new("sim", name), config);
    node.with_core(fixtures::install);
    node
}

/// A fresh network and a node on it running the fixtures.
pub fn start() -> (Net, SimNode) {
    start_with(SessionConfig::default())
}

/// [`start`] with a session configuration.
pub fn start_with(config: SessionConfig) -> (Net, SimNode) {
    let net = Net::new();
    let node = fixture_node(&net, "node", config);
    (net, node)
}

/// A raw peer tagged `tag` with an open session to `node`.
pub fn open(net: &Net, node: &SimNode, tag: &str) -> Peer {
    let mut p = net.connect(node, my_location(tag, 1));
    p.setup();
    p
}

/// Has the node's greeter (at `greeter`) greet a fresh object of `p`'s; the greeting (the
/// whole message) and its args.
pub fn greeted(p: &mut Peer, greeter: Value) -> (Value, Vec<Value>) {
    let me = p.next_import();
    p.send(&rec(
        "op:deliver-only",
        vec![greeter, Value::List(vec![import_object(me)])],
    ));
    p.expect_to(&export(me))
}
