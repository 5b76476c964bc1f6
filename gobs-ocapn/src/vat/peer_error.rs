//! What a peer learns when a gobs actor's method fails, and how a peer's error reads here.
//!
//! A capability system hands an error to whoever holds a reference, so by default it says
//! what the method itself said — its error's kind and message, as the record
//! `<gobs:error kind message>` — and nothing of the node's insides: no actor numbers, vat
//! names or method lists. [`crate::captp::SessionConfig::peer_error_detail`] turns on the
//! full text, for debugging.

use gobs_runtime::Error;

use crate::captp::Term;
use crate::syrup::Value;

/// The record label of an error gobs sends.
pub use crate::node::ERROR_LABEL;

/// The record a peer gets when a call to an actor fails with `e`: `<gobs:error kind
/// message>`, and when the method's own error is of a type listed with
/// [`gobs_runtime::far_error!`], its type name and encoding after them.
pub(crate) fn to_peer(method: &str, e: &Error, detail: bool) -> Term {
    let (kind, safe) = safe(method, e);
    let message = if detail { e.to_string() } else { safe };
    let own = match e {
        Error::Actor {
            source: Some(source),
            ..
        } => gobs_runtime::encode_far_error(&**source),
        _ => None,
    };
    match own {
        Some((name, bytes)) => Term::Record(
            Box::new(Term::sym(ERROR_LABEL)),
            vec![
                Term::str(&kind),
                Term::str(&message),
                Term::str(name),
                Term::Data(Value::Bytes(bytes)),
            ],
        ),
        None => record(&kind, &message),
    }
}

/// The plain string a peer gets when a call to an actor exported with
/// [`PeerErrors::Text`](super::PeerErrors::Text) fails with `e`: the record's message
/// alone (all of `e` with `detail`).
pub(crate) fn to_peer_text(method: &str, e: &Error, detail: bool) -> Term {
    Term::str(&if detail {
        e.to_string()
    } else {
        safe(method, e).1
    })
}

/// The error's kind and a message that names nothing of the node's insides.
fn safe(method: &str, e: &Error) -> (String, String) {
    match e {
        Error::Actor {
            message, source, ..
        } => (
            source.as_deref().map_or("error".to_owned(), kind_of),
            message.clone(),
        ),
        // The detail names the called method's signature or the encoding problem, the
        // caller's own business; an unknown method's list of methods is left out.
        Error::Dispatch { detail, .. } if detail.starts_with("no method") => {
            ("no-such-method".to_owned(), format!("no method `{method}`"))
        }
        Error::Dispatch { detail, .. } => ("bad-call".to_owned(), detail.clone()),
        // Saving what the turn made failed: what about it (e.g. a reference that cannot be
        // saved) is the caller's business, which vat and actor are not.
        Error::Save { source, .. } => safe(method, source),
        Error::Portrait { detail, .. } => ("cannot-save".to_owned(), detail.clone()),
        _ => (
            "unavailable".to_owned(),
            format!("the object could not answer `{method}`"),
        ),
    }
}

/// A `<gobs:error kind message>` record.
pub(crate) fn record(kind: &str, message: &str) -> Term {
    Term::Record(
        Box::new(Term::sym(ERROR_LABEL)),
        vec![Term::str(kind), Term::str(message)],
    )
}

/// The error's kind: the name its `Debug` form starts with (the type's, or the variant's
/// for an enum), which says what failed without the node's insides.
fn kind_of(e: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let debug = format!("{e:?}");
    let name: String = debug
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() || name.chars().all(|c| c.is_ascii_digit()) {
        "error".to_owned()
    } else {
        name
    }
}

/// A peer's error as the text of a gobs error: a gobs peer's `<gobs:error kind message>`,
/// Goblins' detail-free `<exn:fail:mystery>`, a string, or whatever else it sent.
pub(crate) fn text(e: &Term) -> String {
    match e.to_value() {
        Some(Value::String(s)) => s,
        Some(Value::Record(label, fields)) => match (label.as_symbol(), fields.as_slice()) {
            (Some("exn:fail:mystery"), _) => {
                "the peer reported an error and gave no details".to_owned()
            }
            (Some(ERROR_LABEL), [Value::String(kind), Value::String(message), ..]) => {
                format!("{kind}: {message}")
            }
            _ => format!("{:?}", Value::Record(label, fields)),
        },
        Some(other) => format!("{other:?}"),
        None => "broken with a reference".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the tank holds {0} litres")]
    struct OutOfFuel(u32);

    fn fields(t: &Term) -> (String, String) {
        match t.to_value() {
            Some(Value::Record(label, f)) => {
                assert_eq!(label.as_symbol(), Some(ERROR_LABEL));
                match f.as_slice() {
                    [Value::String(k), Value::String(m)] => (k.clone(), m.clone()),
                    other => panic!("not kind and message: {other:?}"),
                }
            }
            other => panic!("not a record: {other:?}"),
        }
    }

    #[test]
    fn a_method_error_reaches_the_peer_as_its_kind_and_message_only() {
        let e = Error::actor("Tank#3 in vat \"garage\"", OutOfFuel(0));
        let (kind, message) = fields(&to_peer("drive", &e, false));
        assert_eq!(kind, "OutOfFuel");
        assert_eq!(message, "the tank holds 0 litres");
        let (_, full) = fields(&to_peer("drive", &e, true));
        assert!(full.contains("Tank#3 in vat \"garage\""), "{full}");
    }

    #[test]
    fn an_unknown_method_does_not_list_the_methods_unless_asked() {
        let e = Error::Dispatch {
            actor: "Greeter#0 in vat \"app\"".into(),
            detail: "no method `grete`; its methods are: greet(name: String)".into(),
        };
        let (kind, message) = fields(&to_peer("grete", &e, false));
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("no-such-method", "no method `grete`")
        );
        let (_, full) = fields(&to_peer("grete", &e, true));
        assert!(full.contains("its methods are: greet"), "{full}");
        let stopped = Error::VatStopped { vat: "app".into() };
        let (kind, message) = fields(&to_peer("greet", &stopped, false));
        assert_eq!(kind, "unavailable");
        assert!(!message.contains("app"), "{message}");
    }

    #[test]
    fn as_text_a_method_error_is_its_message_alone() {
        let e = Error::actor("Tank#3 in vat \"garage\"", OutOfFuel(0));
        assert_eq!(
            to_peer_text("drive", &e, false).to_value(),
            Some(Value::String("the tank holds 0 litres".into()))
        );
        let full = text(&to_peer_text("drive", &e, true));
        assert!(full.contains("Tank#3 in vat \"garage\""), "{full}");
    }

    #[test]
    fn a_peer_error_reads_as_text() {
        let mystery = Term::Record(Box::new(Term::sym("exn:fail:mystery")), vec![]);
        assert_eq!(
            text(&mystery),
            "the peer reported an error and gave no details"
        );
        assert_eq!(text(&record("OutOfFuel", "empty")), "OutOfFuel: empty");
        assert_eq!(text(&Term::str("plain")), "plain");
    }
}
