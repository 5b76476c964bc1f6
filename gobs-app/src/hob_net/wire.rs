//! What the boss and a machine's hob-client say to each other over OCapN: the messages
//! (a method symbol first, then Syrup arguments), their answers, and the bounds on them.
//!
//! Three kinds of object take part:
//!
//! - the boss's **registration** object (one per machine, reached by the one-time
//!   registration sturdyref): `register BINDINGS` → `[machine attach-swiss credential]`;
//! - the boss's **attach** object (one per machine, its sturdyref handed back by
//!   `register`): `attach BINDINGS CREDENTIAL` → `[machine next-credential]` (after a
//!   reconnect; see [`super::credential`]), `confirm CREDENTIAL` once the client stored
//!   the next one, `ping` → `pong`;
//! - the hob-client's **bindings** object: `binding-names`, `status`, and each machine
//!   operation, its arguments and answer as the operation declares them ([`crate::ops`]):
//!   `run ARGV TIMEOUT`, `put-file PATH BYTES MODE`, `get-file PATH`.
//!
//! Every failure is a string that says what happened and what to do.

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;

/// Bytes of stdout and of stderr a remote `run` keeps (what comes after is counted and
/// dropped, with a note). Below the session's 1 MiB string limit, so an answer always fits.
/// The hob-client cuts there, and the boss cuts again whatever a machine sends
/// ([`super::answers::bounded_run`]).
pub const MAX_REMOTE_OUTPUT: usize = 256 * 1024;

/// Largest file `put-file` and `get-file` carry in one message.
pub const MAX_FILE: usize = 512 * 1024;

/// A method call: the symbol, then the arguments.
pub fn call(method: &str, args: Vec<Term>) -> Vec<Term> {
    let mut all = vec![Term::sym(method)];
    all.extend(args);
    all
}

/// A string term.
pub fn text(s: &str) -> Term {
    Term::str(s)
}

/// Splits a message into its method name and arguments.
pub fn method(args: Vec<Term>) -> Result<(String, Vec<Term>), Term> {
    let mut it = args.into_iter();
    let name = it
        .next()
        .and_then(|t| t.as_symbol().map(str::to_owned))
        .ok_or_else(|| text("a message here starts with a method name (a symbol)"))?;
    Ok((name, it.collect()))
}

/// The string in `t`, if it is one.
pub fn as_string(t: &Term) -> Option<String> {
    match t.to_value()? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// The words of a failure: the string a broken promise carries, or a description.
pub fn failure(t: &Term) -> String {
    match t.to_value() {
        Some(Value::String(s)) => s,
        Some(other) => format!("{other:?}"),
        None => "broken with a reference".into(),
    }
}

/// `attach`'s arguments: the client's bindings and its credential (none in state from
/// before rotation).
pub fn attach_args(bindings: Term, credential: Option<&[u8]>) -> Vec<Term> {
    let credential = credential.map_or(Value::Bool(false), |c| Value::Bytes(c.to_vec()));
    call("attach", vec![bindings, Term::Data(credential)])
}

/// The credential an `attach` presents: the bytes, or `false` from a client whose state
/// is from before rotation (a client older still leaves it out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented(pub Option<Vec<u8>>);

impl serde::Serialize for Presented {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(c) => s.serialize_bytes(c),
            None => s.serialize_bool(false),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Presented {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Presented, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Presented;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the hob-client's attach credential (bytes, or false for none)")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Presented, E> {
                Ok(Presented(Some(v.to_vec())))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Presented, E> {
                if v {
                    return Err(E::custom(
                        "the attach credential is bytes, or false for none",
                    ));
                }
                Ok(Presented(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `attach`'s answer: the machine's name and the next credential.
pub fn attached(machine: &str, next: Vec<u8>) -> Term {
    Term::List(vec![text(machine), Term::Data(Value::Bytes(next))])
}

/// Reads `attach`'s answer back: the machine's name and the next credential (none from a
/// boss from before rotation, which answers the name alone).
pub fn parse_attached(t: &Term) -> Result<(String, Option<Vec<u8>>), String> {
    match t.to_value() {
        Some(Value::String(machine)) => Ok((machine, None)),
        Some(Value::List(parts)) => match parts.as_slice() {
            [Value::String(machine), Value::Bytes(next)] => {
                Ok((machine.clone(), Some(next.clone())))
            }
            _ => Err(format!(
                "the boss answered attach with {parts:?}, not [machine credential]"
            )),
        },
        _ => Err(format!(
            "the boss answered attach with {t:?}, not [machine credential]"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_message_without_a_method_name_is_refused() {
        assert!(method(vec![text("not a symbol")]).is_err());
        let (name, args) = method(call("ping", vec![text("x")])).unwrap();
        assert_eq!((name.as_str(), args.len()), ("ping", 1));
    }
}
