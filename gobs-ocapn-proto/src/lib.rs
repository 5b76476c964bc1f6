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

pub mod captp;
pub mod fixtures;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod locator;
pub mod node;
pub mod syrup;
#[cfg(feature = "testing")]
pub mod testing;
