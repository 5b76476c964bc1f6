//! What an actor's error says to a person.

use gobs_runtime::Error;

/// What an error says, without the "`Actor#3 in vat "x"` failed:" prefix the runtime puts in
/// front of an actor's own error: for messages shown to people.
pub fn reason(error: &Error) -> String {
    match error {
        Error::Actor { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
