//! Syrup, OCapN's serialization: the data model ([`Value`]), the canonical codec with its
//! decoding limits ([`encode()`], [`decode_with()`], [`Limits`]), and a serde bridge
//! ([`to_bytes`], [`from_bytes`]).

mod de;
mod decode;
mod encode;
mod error;
mod ser;
mod ser_bytes;
mod value;

pub use de::{from_bytes, from_value};
pub(crate) use decode::Cursor;
pub use decode::{Limits, decode, decode_prefix, decode_with};
pub(crate) use encode::{close_record, encode_uint, open_record};
pub use encode::{encode, encode_into};
pub use error::SyrupError;
pub use ser::{MapBuilder, SeqBuilder, ValueSerializer, to_bytes, to_value};
pub use value::Value;
