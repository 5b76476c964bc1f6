//! OCapN protocol core: Syrup, locators, CapTP sessions and the node core, without I/O.
//!
//! - [`syrup`]: the codec every OCapN message is written in.
//! - [`locator`]: `ocapn://` peer and sturdyref locators.
//! - [`captp`]: the CapTP session as a pure state machine (bytes in, events and bytes out).
//! - [`node`]: a node's objects, promises and sessions ([`node::Core`]): bytes and
//!   connection events in, [`node::Action`]s (write, dial, close) out.
//! - [`fixtures`]: the objects the public conformance suite expects.
//! - `testing` (feature `testing`): a deterministic pair harness, node cores and raw peers
//!   on a simulated network with a simulated clock, for this crate's tests and others'.
//!
//! The I/O around it (netlayers, the tokio shell that runs a [`node::Core`], gobs actors
//! exported to peers) is in `gobs-ocapn`, as quinn is to quinn-proto.
//!
//! # Sans-I/O
//!
//! A [`node::Core`] never touches a socket, a clock or a thread. Its host tells it what
//! happened ([`Core::accepted`](node::Core::accepted), [`Core::bytes`](node::Core::bytes),
//! [`Core::closed`](node::Core::closed), [`Core::hello_deadline`](node::Core::hello_deadline)
//! when the host's timer fires) and carries out the [`node::Action`]s it takes from
//! [`Core::take_actions`](node::Core::take_actions): write bytes, dial a peer, close a
//! connection. Two cores joined in memory, one calling the conformance suite's echo
//! object on the other:
//!
//! ```
//! use gobs_ocapn_proto::captp::{ConnId, CapRef, SessionConfig, Term};
//! use gobs_ocapn_proto::fixtures::{self, ECHO_GC};
//! use gobs_ocapn_proto::locator::{PeerLocator, Sturdyref};
//! use gobs_ocapn_proto::node::{Action, Core};
//!
//! let alice_at = PeerLocator::new("memory", "alice");
//! let mut alice = Core::new(alice_at.clone(), SessionConfig::default());
//! fixtures::install(&mut alice);
//! let mut bob = Core::new(PeerLocator::new("memory", "bob"), SessionConfig::default());
//!
//! // Bob enlivens a sturdyref to Alice's echo object and sends to it at once (the message
//! // waits on the promise). Nothing has left yet: the core only queued actions.
//! let echo = bob.enliven(&Sturdyref { peer: alice_at, swiss: ECHO_GC.to_vec() });
//! let answer = bob.send(CapRef::Local(echo), vec![Term::str("hi")]);
//! bob.run();
//!
//! // The host's side: Bob's dial becomes a connection Alice accepts, and bytes cross over
//! // until neither core has anything more to say.
//! let (mut at_bob, mut at_alice) = (ConnId(0), ConnId(0));
//! loop {
//!     let mut quiet = true;
//!     for action in bob.take_actions() {
//!         quiet = false;
//!         match action {
//!             Action::Dial(conn, _peer) => (at_bob, at_alice) = (conn, alice.accepted()),
//!             Action::Write(_, bytes) => alice.bytes(at_alice, &bytes),
//!             Action::Close(_) => {}
//!         }
//!     }
//!     for action in alice.take_actions() {
//!         quiet = false;
//!         if let Action::Write(_, bytes) = action {
//!             bob.bytes(at_bob, &bytes);
//!         }
//!     }
//!     if quiet {
//!         break;
//!     }
//! }
//! assert_eq!(
//!     bob.promise_state(answer.id),
//!     Some(Ok(Term::List(vec![Term::str("hi")])))
//! );
//! ```

pub mod captp;
pub mod fixtures;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod id_hash;
pub mod locator;
pub mod node;
pub mod syrup;
#[cfg(feature = "testing")]
pub mod testing;
