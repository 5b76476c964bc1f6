//! A node's objects, promises and sessions, without I/O: [`Core`] and the objects it hosts.

mod core;

pub use self::core::{
    Action, CARETAKER_REVOKED, Callback, Core, CoreCallback, Cx, HELLO_TIMEOUT, LocalObject,
    MintHook, REVOKED_KEPT, RevokeHook,
};
