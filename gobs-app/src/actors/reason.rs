//! What an actor's error says to a person.

use gobs_runtime::Error;
use gobs_runtime::store::StoreErrorKind;

/// What an error says, without the "`Actor#3 in vat "x"` failed:" prefix the runtime puts in
/// front of an actor's own error: for messages shown to people. A store's failure says what
/// kind it is first (a full disk is not a damaged state).
pub fn reason(error: &Error) -> String {
    match error {
        Error::Actor { message, .. } => message.clone(),
        other => match other.store_error() {
            Some(store) => format!("storage failure ({}): {other}", store_trouble(store.kind())),
            None => other.to_string(),
        },
    }
}

/// A store failure's kind in a few words.
pub fn store_trouble(kind: StoreErrorKind) -> &'static str {
    match kind {
        StoreErrorKind::DiskFull => "the disk is full",
        StoreErrorKind::Corrupt => "the state is damaged",
        StoreErrorKind::Locked => "the state is in use",
        _ => "the state could not be read or written",
    }
}
