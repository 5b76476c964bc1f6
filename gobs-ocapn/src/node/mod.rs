//! A node: the objects it hosts, its sessions, and the tokio shell that runs them.

mod shell;

pub use gobs_ocapn_proto::node::{
    Action, CARETAKER_REVOKED, Callback, Core, CoreCallback, Cx, HELLO_TIMEOUT, LocalObject,
    MintHook, REVOKED_KEPT, RevokeHook,
};
pub use shell::{Node, NodeStopped};
