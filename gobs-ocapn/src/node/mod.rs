//! A node: the objects it hosts, its sessions, and the tokio shell that runs them.

mod actors;
mod driver;
mod shell;

pub(crate) use actors::ActorTable;

pub use gobs_ocapn_proto::node::{
    Action, CARETAKER_REVOKED, Callback, Core, CoreCallback, Cx, ERROR_LABEL, HELLO_TIMEOUT,
    LocalObject, MintHook, OBJECT_RELEASED, REVOKED_KEPT, RevokeHook, SWISS_REVOKED, SWISS_UNKNOWN,
    error_record, is_kind, kinds,
};
pub(crate) use shell::run_inline;
pub use shell::{Node, NodeStopped};
