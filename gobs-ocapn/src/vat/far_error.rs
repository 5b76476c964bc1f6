//! The gobs [`Error`] a far message breaks with, from the reason its node or its peer gave:
//! a kind a program can match ([`ErrorKind`]), the object named by its `ocapn://` URI, and
//! the method's own error type back when both sides list it
//! ([`gobs_runtime::far_error!`]).

use std::sync::Arc;

use gobs_runtime::{Error, ErrorKind, decode_far_error};

use super::peer_error::ERROR_LABEL;
use super::remote::{RemoteError, RemoteObject};
use crate::captp::{CapRef, Term};
use crate::node::{Core, OBJECT_RELEASED, SWISS_REVOKED, SWISS_UNKNOWN, kinds};
use crate::syrup::Value;

/// Kinds of a gobs peer's `<gobs:error kind message>` that are not the method's own error.
const NO_SUCH_METHOD: &str = "no-such-method";
const BAD_CALL: &str = "bad-call";
const UNAVAILABLE: &str = "unavailable";

/// How errors name `remote`, on the node's task: its sturdyref, or the peer it was
/// imported from, by URI.
pub(crate) fn name_in(core: &Core, remote: &RemoteObject) -> String {
    if let Some(s) = remote.sturdyref() {
        return s.to_uri();
    }
    match remote.target() {
        Some(CapRef::Remote(r)) => match core.peer_uri(r.conn()) {
            Some(uri) => format!("an object of {uri}"),
            None => "an object of a peer whose address was never learned".to_owned(),
        },
        Some(CapRef::Local(_)) | None => {
            format!("an answer promised to {}", core.locator().to_uri())
        }
    }
}

/// The error a message to `target` breaks with, given the `reason` it broke with.
pub(crate) fn from_reason(target: &str, reason: &Term) -> Error {
    match reason.to_value() {
        Some(Value::Record(label, fields)) if label.as_symbol() == Some(ERROR_LABEL) => {
            match fields.as_slice() {
                [Value::String(kind), Value::String(message), rest @ ..] => {
                    from_kind(target, kind, message, rest)
                }
                _ => broken(target, "error", &format!("{fields:?}")),
            }
        }
        Some(Value::String(s)) => from_text(target, &s),
        _ => broken(target, "error", &super::peer_error::text(reason)),
    }
}

fn from_kind(target: &str, kind: &str, message: &str, typed: &[Value]) -> Error {
    let far = |k| Error::far(k, target, message);
    let hinted = |k, hint: &str| Error::far(k, target, format!("{message}; {hint}"));
    match kind {
        kinds::UNREACHABLE => hinted(
            ErrorKind::Unreachable,
            "the message was not delivered. Check that the peer runs and that its address \
             is right",
        ),
        kinds::NOT_SENT => hinted(
            ErrorKind::SessionLost,
            "the message was not delivered. A reference from a sturdyref reaches the peer \
             anew on its next send",
        ),
        kinds::SESSION_LOST => hinted(
            ErrorKind::SessionLost,
            "the message may or may not have run. A reference from a sturdyref reaches the \
             peer anew on its next send",
        ),
        NO_SUCH_METHOD | BAD_CALL => far(ErrorKind::Refused),
        UNAVAILABLE => far(ErrorKind::Stopped),
        _ => {
            // The method's own error: as its type when this program lists it.
            let source = match typed {
                [Value::String(name), Value::Bytes(bytes), ..] => decode_far_error(name, bytes),
                _ => None,
            };
            match source {
                Some(source) => Error::Actor {
                    actor: target.to_owned(),
                    message: message.to_owned(),
                    source: Some(source),
                },
                None => broken(target, kind, message),
            }
        }
    }
}

/// A reason given as plain text: the node's known answers by their constant, anything
/// else as the object's error.
fn from_text(target: &str, text: &str) -> Error {
    match text {
        SWISS_UNKNOWN | OBJECT_RELEASED => Error::far(ErrorKind::NotFound, target, text),
        SWISS_REVOKED | crate::node::CARETAKER_REVOKED => {
            Error::far(ErrorKind::Refused, target, text)
        }
        _ => broken(target, "error", text),
    }
}

/// The object ran the message and failed, with an error this program has no type for.
fn broken(target: &str, kind: &str, message: &str) -> Error {
    let text = if kind == "error" {
        message.to_owned()
    } else {
        format!("{kind}: {message}")
    };
    Error::Actor {
        actor: target.to_owned(),
        message: text.clone(),
        source: Some(Arc::new(RemoteError(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::error_record;

    #[test]
    fn each_reason_has_its_kind() {
        let t = "ocapn://bank.tcp-tls/s/x";
        let kind = |r: &Term| from_reason(t, r).kind();
        assert_eq!(
            kind(&error_record(kinds::UNREACHABLE, "down")),
            ErrorKind::Unreachable
        );
        assert_eq!(
            kind(&error_record(kinds::NOT_SENT, "gone")),
            ErrorKind::SessionLost
        );
        assert_eq!(
            kind(&error_record(kinds::SESSION_LOST, "cut")),
            ErrorKind::SessionLost
        );
        assert_eq!(
            kind(&error_record(NO_SUCH_METHOD, "no method")),
            ErrorKind::Refused
        );
        assert_eq!(kind(&Term::str(SWISS_UNKNOWN)), ErrorKind::NotFound);
        assert_eq!(kind(&Term::str(SWISS_REVOKED)), ErrorKind::Refused);
        let own = from_reason(t, &error_record("Overdraft", "3 short"));
        assert_eq!(own.kind(), ErrorKind::Broken);
        assert_eq!(own.to_string(), format!("{t} failed: Overdraft: 3 short"));
        let far = from_reason(t, &error_record(kinds::UNREACHABLE, "refused"));
        assert!(
            far.to_string().starts_with(&format!("{t}: refused; ")),
            "{far}"
        );
    }
}
