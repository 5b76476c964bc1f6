//! A node: the objects it hosts, its sessions, and the tokio shell that runs them.

mod caretaker;
pub(crate) mod core;
mod object;
mod shell;

pub use self::core::{Action, Callback, Core, CoreCallback, MintHook, REVOKED_KEPT, RevokeHook};
pub use caretaker::CARETAKER_REVOKED;
pub use object::{Cx, LocalObject};
pub use shell::{Node, NodeStopped};
