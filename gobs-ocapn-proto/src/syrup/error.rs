//! Errors of the Syrup codec and of the serde bridge.

use thiserror::Error;

/// What went wrong while decoding or (de)serializing Syrup.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SyrupError {
    /// The input ended in the middle of a value; more bytes may complete it.
    #[error("syrup input ends in the middle of a value (need more bytes)")]
    Incomplete,
    /// A byte that cannot start or continue a value here.
    #[error("syrup: unexpected byte {byte:?} at offset {offset}")]
    Unexpected {
        /// The offending byte, as a char for readability.
        byte: char,
        /// Its offset in the input.
        offset: usize,
    },
    /// The input is valid Syrup but not in canonical form (so re-encoding it would not give
    /// the same bytes, and a signature over it could not be checked).
    #[error("syrup: non-canonical encoding at offset {offset}: {what}")]
    NonCanonical {
        /// Offset of the value.
        offset: usize,
        /// What is not canonical.
        what: &'static str,
    },
    /// A length, count, depth or integer exceeded the decoder's limits.
    #[error("syrup: {what} at offset {offset} exceeds the limit of {limit}")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// The limit in force.
        limit: usize,
        /// Where it was exceeded.
        offset: usize,
    },
    /// A string or symbol is not valid UTF-8.
    #[error("syrup: string or symbol at offset {offset} is not valid UTF-8")]
    Utf8 {
        /// Offset of the value.
        offset: usize,
    },
    /// Bytes were left over after a complete value.
    #[error("syrup: {count} bytes left over after the value")]
    Trailing {
        /// How many.
        count: usize,
    },
    /// A value of the wrong shape for the Rust type it was deserialized into, or a serde
    /// error raised by a type's own Serialize/Deserialize impl.
    #[error("syrup: {0}")]
    Message(String),
}

impl serde::ser::Error for SyrupError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        SyrupError::Message(msg.to_string())
    }
}

impl serde::de::Error for SyrupError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        SyrupError::Message(msg.to_string())
    }
}
