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
//! This is its own crate, not a module of `gobs-runtime`, so that local-only users build
//! no tokio, rustls or ed25519.

pub mod captp;
pub mod fixtures;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod locator;
pub mod netlayer;
pub mod node;
pub mod persist;
pub mod syrup;
pub mod vat;
