//! OCapN for gobs: Syrup, a sans-I/O CapTP session core, netlayers and a node.
//!
//! - [`syrup`]: the codec every OCapN message is written in.
//! - [`locator`]: `ocapn://` peer and sturdyref locators.
//! - [`captp`]: the CapTP session as a pure state machine (bytes in, events and bytes out).

pub mod captp;
pub mod fixtures;
pub mod locator;
pub mod netlayer;
pub mod node;
pub mod syrup;
