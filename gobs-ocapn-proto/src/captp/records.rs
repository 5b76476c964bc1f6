//! How an application's records travel inside CapTP messages.
//!
//! Goblins 0.18 sends a record of the application's own (its `<tagged>`) as
//! `<user-record label [fields…]>` and refuses any record in a message whose label its
//! CapTP does not know ("Unknown tag"); the spec has a Tagged type but no wire form for it
//! yet. So gobs writes every record that is not CapTP's or OCapN's own in that envelope,
//! and reads both the envelope and a bare record (what other peers send).

use crate::syrup::Value;

/// The label Goblins wraps application records in.
pub const USER_RECORD: &str = "user-record";

/// Whether a record with this label is the protocol's own, written as it is: descriptors,
/// locators, and the records Goblins' CapTP gives a meaning (errors, `void`, …).
pub fn is_protocol_label(label: &Value) -> bool {
    match label.as_symbol() {
        Some(l) => {
            l.starts_with("desc:")
                || l.starts_with("op:")
                || matches!(
                    l,
                    "ocapn-peer"
                        | "ocapn-sturdyref"
                        | "exn:fail:mystery"
                        | "void"
                        | "pair"
                        | "vec"
                        | "kw"
                        | USER_RECORD
                )
        }
        None => false,
    }
}

/// The envelope for an application record.
pub fn wrap(label: Value, fields: Vec<Value>) -> Value {
    Value::record(USER_RECORD, vec![label, Value::List(fields)])
}

/// The application record inside an envelope, if `label` and `args` are one.
pub fn unwrap(label: &Value, args: &[Value]) -> Option<(Value, Vec<Value>)> {
    match (label.as_symbol(), args) {
        (Some(USER_RECORD), [inner, Value::List(fields)]) => Some((inner.clone(), fields.clone())),
        _ => None,
    }
}
