//! A node: the objects it hosts, its sessions, and the tokio shell that runs them.
//!
//! [`Node::open`] makes one from a persistence registry (identity, port and published
//! names kept there); [`Node::start`] assembles one from netlayers, for hosts that keep
//! their state themselves.

mod actors;
mod error;
mod open;
mod publish;
mod shell;

pub(crate) use actors::ActorTable;

pub use error::NodeError;
pub use gobs_ocapn_proto::node::{
    Action, CARETAKER_REVOKED, Callback, Core, CoreCallback, Cx, HELLO_TIMEOUT, LocalObject,
    MintHook, REVOKED_KEPT, RevokeHook,
};
pub use open::NodeBuilder;
pub use shell::{Node, NodeStopped};
