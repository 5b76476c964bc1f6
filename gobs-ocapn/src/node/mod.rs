//! A node: the objects it hosts, its sessions, and the tokio shell that runs them.
//!
//! [`Node::open`] makes one from a persistence registry (identity, port and published
//! names kept there); [`Node::start`] assembles one from netlayers, for hosts that keep
//! their state themselves.

mod actors;
mod driver;
mod error;
mod open;
mod publish;
mod shell;

pub(crate) use actors::ActorTable;

pub use error::NodeError;
pub use gobs_ocapn_proto::node::{
    Action, CARETAKER_REVOKED, Callback, Core, CoreCallback, Cx, ERROR_LABEL, HELLO_TIMEOUT,
    IDLE_TIMEOUT, LocalObject, MintHook, OBJECT_RELEASED, PeerProof, REVOKED_KEPT, RevokeHook,
    SWISS_REVOKED, SWISS_UNKNOWN, error_record, is_kind, kinds,
};
pub use open::NodeBuilder;
pub use shell::{Node, NodeStopped};
pub(crate) use shell::{WeakNode, run_inline};
