//! A node's objects, promises and sessions, without I/O: [`Core`] and the objects it hosts.

mod core;

pub use self::core::{
    Action, CARETAKER_REVOKED, Callback, Core, CoreCallback, Cx, ERROR_LABEL, HELLO_TIMEOUT,
    IDLE_TIMEOUT, LocalObject, MintHook, OBJECT_RELEASED, PeerProof, REVOKED_KEPT, RevokeHook,
    SWISS_REVOKED, SWISS_UNKNOWN, error_record, is_kind, kinds,
};
