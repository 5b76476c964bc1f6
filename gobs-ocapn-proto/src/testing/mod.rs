//! A deterministic test harness (feature `testing`): node cores and raw CapTP peers on a
//! simulated network with a simulated clock, as quinn-proto's tests pair two endpoints.
//!
//! - [`Net`]: the network and its clock. Links carry each write as a frame after the
//!   link's latency; a test moves them ([`Net::run`], [`Net::drive`], [`Net::advance`])
//!   and may delay, hold, release (coalesced) or cut a link. An open link loses nothing
//!   and keeps order (CapTP runs over streams); a cut loses what is in flight and ends
//!   the connection; links with different latencies reorder frames between them. No
//!   threads, no sockets, no wall-clock time: the same test sees the same interleaving
//!   every run.
//! - [`SimNode`]: a [`crate::node::Core`] on the network; a dial it makes connects to the
//!   node or [`Listener`] with that locator.
//! - [`Peer`]: a raw-Syrup peer that checks a node at the wire, as the public conformance
//!   suite does.
//! - [`SessionPair`]: two bare sessions, for the session state machine alone.
//! - [`Wire`]: what a [`Peer`] talks over; another crate may run the same peer over a
//!   socket.
//!
//! It is a module of the crate rather than a test helper so that other crates' tests
//! (gobs-ocapn's) can use it too: they enable the feature in their dev-dependencies.
//!
//! ```
//! use gobs_ocapn_proto::captp::SessionConfig;
//! use gobs_ocapn_proto::fixtures::{self, GREETER};
//! use gobs_ocapn_proto::locator::PeerLocator;
//! use gobs_ocapn_proto::testing::{Net, export, import_object, my_location, rec};
//! use gobs_ocapn_proto::syrup::Value;
//!
//! let net = Net::new();
//! let node = net.node(PeerLocator::new("sim", "node"), SessionConfig::default());
//! node.with_core(fixtures::install);
//! let mut peer = net.connect(&node, my_location("peer", 1));
//! peer.setup();
//! let greeter = peer.fetch(GREETER);
//! let me = peer.next_import();
//! peer.send(&rec("op:deliver-only", vec![greeter, Value::List(vec![import_object(me)])]));
//! assert_eq!(peer.expect_to(&export(me)).1, vec![Value::from("Hello")]);
//! ```

// A harness fails the test that misuses it, or whose node misbehaves, by panicking.
#![allow(clippy::expect_used)]

mod net;
mod node;
mod peer;
mod sessions;
mod wire;

pub use net::{LinkId, Net};
pub use node::SimNode;
pub use peer::{
    Listener, Peer, answer, export, import_object, import_promise, int, my_location, position, rec,
    sym,
};
pub use sessions::{BOOTSTRAP, SessionPair};
pub use wire::{SimWire, Wire, WireRead};
