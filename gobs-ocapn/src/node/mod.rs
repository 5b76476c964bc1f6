//! A node: the objects it hosts, its sessions, and the tokio shell that runs them.

mod actors;
mod shell;

pub(crate) use actors::ActorTable;

pub use gobs_ocapn_proto::node::{
    Action, CARETAKER_REVOKED, Callback, Core, CoreCallback, Cx, HELLO_TIMEOUT, LocalObject,
    MintHook, REVOKED_KEPT, RevokeHook,
};
pub(crate) use shell::run_inline;
pub use shell::{Node, NodeStopped};
