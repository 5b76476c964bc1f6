//! A node's objects, promises and sessions, without I/O: [`Core`] and the objects it hosts.

mod caretaker;
mod core;
mod object;

pub use self::core::{
    Action, Callback, Core, CoreCallback, HELLO_TIMEOUT, MintHook, REVOKED_KEPT, RevokeHook,
};
pub use caretaker::CARETAKER_REVOKED;
pub use object::{Cx, LocalObject};
