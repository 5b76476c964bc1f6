//! A node's persisted network state — its tcp-tls identity, its port, its swiss numbers
//! and the actors published under them — so its designator and every sturdyref it
//! handed out survive restarts. [`Node::open`](crate::node::Node::open) keeps it for
//! you; these are the pieces underneath, for hosts that assemble a node themselves.
//!
//! - [`NodeStore`] keeps it in a persistence [`Registry`](gobs_runtime::Registry), as
//!   one persistent vat (`ocapn-node`) beside the application's: one registry holds the
//!   node's whole state, committed like any churn. It also remembers the actors
//!   published by name ([`NodeStore::publish`]) and the sturdyrefs the node minted for
//!   peers (`gobs:sturdyref`) to gobs actors, and binds them again at startup, so a
//!   reference a peer saved in a portrait reaches the same actor after this node
//!   restarts, and the port the node listens on ([`NodeStore::port`]). [`NodeStore::revoke`] takes a swiss number back for good.
//!   An older [`NodeState`] file is migrated on first open.
//! - [`NodeState`] is the older form: one file of its own, replaced atomically.

mod attach;
mod file;
mod record;
mod registry;

pub use file::{NodeState, PersistError};
pub use record::{NodeRecord, Publish, Revoked};
pub use registry::{NODE_VAT, NodeStore, env};
