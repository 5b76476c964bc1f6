//! OCapN for gobs: Syrup, a sans-I/O CapTP session core, netlayers and a node.
//!
//! - [`syrup`]: the codec every OCapN message is written in.

pub mod syrup;
