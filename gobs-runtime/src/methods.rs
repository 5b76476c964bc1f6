//! Calling an actor's methods by name: the table of methods `#[define_actor]` lists, the
//! answer a call by name gives, and why one fails. A command line or a network peer
//! reaches actors this way, with MessagePack arguments and results.

use crate::error::Error;

/// Whether a method may change its actor (`&mut self`) or only reads it (`&self`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// `&self`: no snapshot, never marks the actor changed.
    Read,
    /// `&mut self`: the actor is snapshotted and saved after the turn.
    Write,
}

/// Calling an actor's methods by name with MessagePack arguments: what a command line or a
/// network peer uses. Implemented by `#[define_actor]` on the actor's `impl` block; only
/// `pub` methods not marked `#[actor(local)]` are listed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `#[define_actor]` impl block",
    label = "missing `#[define_actor] impl {Self} {{ ... }}`",
    note = "add `#[gobs_runtime::define_actor]` to an `impl {Self}` block holding its methods (it may be empty)"
)]
pub trait Methods {
    /// Names of the methods callable by name, with their argument lists.
    const METHODS: &'static [MethodInfo] = &[];

    /// Calls a `&self` method by name; `args` is a MessagePack array of its arguments.
    fn dispatch_read(&self, method: &str, args: &[u8]) -> Result<Reply, DispatchError> {
        let _ = args;
        Err(DispatchError::UnknownMethod(method.to_string()))
    }

    /// Calls a `&mut self` method by name.
    fn dispatch_write(&mut self, method: &str, args: &[u8]) -> Result<Reply, DispatchError> {
        let _ = args;
        Err(DispatchError::UnknownMethod(method.to_string()))
    }
}

/// One method callable by name.
#[derive(Debug)]
pub struct MethodInfo {
    /// The method's name.
    pub name: &'static str,
    /// Its arguments as written, e.g. `name: String, count: u32`.
    pub args: &'static str,
    /// Read or write.
    pub kind: MethodKind,
}

/// What a call by name answers: the encoded result now, or, for a message that returns a
/// [`Promise`](crate::Promise), a promise of it.
#[derive(Debug)]
pub enum Reply {
    /// The MessagePack-encoded result.
    Now(Vec<u8>),
    /// The encoded result, once the message's promise settles.
    Later(crate::Promise<Vec<u8>>),
}

impl Reply {
    /// The answer as a promise either way.
    pub(crate) fn into_promise(self) -> crate::Promise<Vec<u8>> {
        match self {
            Reply::Now(bytes) => crate::Promise::fulfilled(bytes),
            Reply::Later(promise) => promise,
        }
    }
}

/// Why a call by name did not reach the method, or what the method returned as an error.
#[derive(Debug)]
pub enum DispatchError {
    /// No such method.
    UnknownMethod(String),
    /// The arguments did not decode as the method's parameters.
    BadArguments {
        /// The method.
        method: &'static str,
        /// Its parameters as written.
        expected: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// The result could not be encoded.
    BadResult(String),
    /// The result holds a reference, which a call by name cannot carry.
    RefInResult {
        /// The reference, as `Type#id in vat "name"`.
        reference: String,
    },
    /// The method ran and returned an error.
    Failed(crate::error::BoxError),
}

pub(crate) fn method_kind(methods: &[MethodInfo], name: &str) -> Option<MethodKind> {
    methods.iter().find(|m| m.name == name).map(|m| m.kind)
}

pub(crate) fn unknown_method(describe: &str, name: &str, methods: &[MethodInfo]) -> Error {
    let list: Vec<String> = methods
        .iter()
        .map(|m| format!("{}({})", m.name, m.args))
        .collect();
    Error::Dispatch {
        actor: describe.to_string(),
        detail: if list.is_empty() {
            format!("no method `{name}`: it has no methods callable by name")
        } else {
            format!("no method `{name}`; its methods are: {}", list.join(", "))
        },
    }
}
