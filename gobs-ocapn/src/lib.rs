//! OCapN for gobs: Syrup, a sans-I/O CapTP session core, netlayers and a node.
//!
//! - [`syrup`]: the codec every OCapN message is written in.
//! - [`locator`]: `ocapn://` peer and sturdyref locators.
//! - [`captp`]: the CapTP session as a pure state machine (bytes in, events and bytes out).
//! - [`node`]: a node's objects, promises and sessions ([`node::Core`], sans-I/O) and the
//!   tokio shell that runs them ([`node::Node`]).
//! - [`netlayer`]: `tcp-testing-only`, `tcp-tls` (Goblins-compatible) and unix sockets.
//! - [`fixtures`]: the objects the public conformance suite expects.
//! - [`vat`]: gobs actors exported to peers (their methods take and return references),
//!   remote objects reached from vats and kept in portraits.
//! - [`persist`]: a node's identity and swiss table in a persistence registry (or a file
//!   of its own), so sturdyrefs survive restarts.
//!
//! Answers of far objects are gobs [`Promise`](gobs_runtime::Promise)s: `.await` them in
//! async code, and call `wait()` only from threads that run no node (the rule:
//! [blocking or async](gobs_runtime::Promise#blocking-or-async-one-rule)).
//!
//! Syrup, locators, CapTP and the node core are the crate `gobs-ocapn-proto` (no I/O, no
//! tokio, no gobs-runtime), re-exported here at their old paths; this crate adds the I/O
//! and the vats. It is its own crate, not a module of `gobs-runtime`, so that local-only
//! users build no tokio, rustls or ed25519.

pub mod netlayer;
pub mod node;
pub mod persist;
pub mod vat;

// The protocol core, at the paths it had before it became a crate of its own.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use gobs_ocapn_proto::fuzzing;
pub use gobs_ocapn_proto::{captp, fixtures, locator, syrup};
