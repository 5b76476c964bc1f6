//! Error types that cross the network as themselves: a method's own error (`Overdraft` in
//! `Result<u64, Overdraft>`) reaches a far caller as that type, to downcast as a near
//! caller does, when both programs list it with [`far_error!`](crate::far_error).
//!
//! The exporting node encodes the error (MessagePack, serde) next to its kind and message;
//! the caller's node decodes it by the type's name. A type one side does not list still
//! arrives, as its kind and message.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A serde error type listed with [`far_error!`](crate::far_error). Made by the macro.
#[doc(hidden)]
pub struct FarErrorType {
    name: fn() -> &'static str,
    encode: fn(&(dyn std::error::Error + 'static)) -> Option<Vec<u8>>,
    decode: fn(&[u8]) -> Option<Arc<dyn std::error::Error + Send + Sync>>,
}

inventory::collect!(FarErrorType);

impl FarErrorType {
    /// The entry for `E`, named by its Rust path (the same in both programs when they
    /// share the crate that defines it).
    pub const fn of<E>() -> Self
    where
        E: std::error::Error + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        FarErrorType {
            name: std::any::type_name::<E>,
            encode: |e| rmp_serde::to_vec_named(e.downcast_ref::<E>()?).ok(),
            decode: |bytes| {
                let e: E = rmp_serde::from_slice(bytes).ok()?;
                Some(Arc::new(e))
            },
        }
    }
}

/// Lists serde error types that cross the network as themselves (see [`crate::Error::actor_error`]):
/// list each in the exporting program and in the caller's.
///
/// ```
/// #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
/// #[error("overdraft: {short} short")]
/// pub struct Overdraft { short: u64 }
///
/// gobs_runtime::far_error!(Overdraft);
/// ```
#[macro_export]
macro_rules! far_error {
    ($($ty:ty),+ $(,)?) => {
        $(
            $crate::__private::inventory::submit! {
                $crate::__private::FarErrorType::of::<$ty>()
            }
        )+
    };
}

/// A listed error's type name and encoding, if `e` is of a listed type.
pub fn encode_far_error(e: &(dyn std::error::Error + 'static)) -> Option<(&'static str, Vec<u8>)> {
    inventory::iter::<FarErrorType>
        .into_iter()
        .find_map(|t| (t.encode)(e).map(|bytes| ((t.name)(), bytes)))
}

/// The error `bytes` encode, if `name` is a listed type and they decode as it.
pub fn decode_far_error(
    name: &str,
    bytes: &[u8],
) -> Option<Arc<dyn std::error::Error + Send + Sync>> {
    inventory::iter::<FarErrorType>
        .into_iter()
        .find(|t| (t.name)() == name)
        .and_then(|t| (t.decode)(bytes))
}
