//! serde → Syrup: a [`serde::Serializer`] that builds a [`Value`].
//!
//! The mapping (the same one [`super::de`] reads back):
//!
//! | Rust | Syrup |
//! | --- | --- |
//! | `bool`, integers, `f32`, `f64` | boolean, integer, `F`, `D` |
//! | `char`, `&str`, `String` | string |
//! | bytes (`serde_bytes`) | byte string |
//! | `None` / `Some(x)` | `<none>` / `<some x>` |
//! | `()`, unit struct | `[]` |
//! | newtype struct | its field |
//! | sequence, tuple, tuple struct | list |
//! | map | dictionary |
//! | struct `S { a, b }` | record `<S a b>` (positional, as Goblins records are) |
//! | enum unit variant `V` | symbol `V` |
//! | other variants `V(..)`, `V { .. }` | record `<V fields...>` |

use serde::ser::{self, Serialize};

use super::{SyrupError, Value};

/// Serializes `value` into a Syrup [`Value`].
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, SyrupError> {
    value.serialize(ValueSerializer)
}

/// Serializes `value` to canonical Syrup bytes.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Car { color: String, wheels: u8 }
/// let bytes = gobs_ocapn_proto::syrup::to_bytes(&Car { color: "red".into(), wheels: 4 }).unwrap();
/// assert_eq!(bytes, b"<3'Car3\"red4+>");
/// let back: Car = gobs_ocapn_proto::syrup::from_bytes(&bytes).unwrap();
/// assert_eq!(back, Car { color: "red".into(), wheels: 4 });
/// ```
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, SyrupError> {
    let mut out = Vec::new();
    value.serialize(super::ser_bytes::ByteSerializer { out: &mut out })?;
    Ok(out)
}

/// The serializer behind [`to_value`].
#[derive(Debug, Clone, Copy)]
pub struct ValueSerializer;

/// Collects the items of a sequence-like value.
#[derive(Debug)]
pub struct SeqBuilder {
    label: Option<&'static str>,
    items: Vec<Value>,
}

impl SeqBuilder {
    fn finish(self) -> Value {
        match self.label {
            Some(l) => Value::record(l, self.items),
            None => Value::List(self.items),
        }
    }
}

/// Collects the pairs of a map.
#[derive(Debug)]
pub struct MapBuilder {
    pairs: Vec<(Value, Value)>,
    key: Option<Value>,
}

fn int<T: TryInto<i128>>(v: T) -> Result<Value, SyrupError> {
    v.try_into()
        .map(Value::Int)
        .map_err(|_| SyrupError::Message("integer does not fit an i128".into()))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = SyrupError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = SeqBuilder;
    type SerializeStructVariant = SeqBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, SyrupError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Value, SyrupError> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Value, SyrupError> {
        Ok(Value::F32(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, SyrupError> {
        Ok(Value::F64(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, SyrupError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, SyrupError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, SyrupError> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, SyrupError> {
        Ok(Value::record("none", vec![]))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, SyrupError> {
        Ok(Value::record("some", vec![to_value(value)?]))
    }
    fn serialize_unit(self) -> Result<Value, SyrupError> {
        Ok(Value::List(vec![]))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, SyrupError> {
        Ok(Value::List(vec![]))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, SyrupError> {
        Ok(Value::symbol(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, SyrupError> {
        to_value(value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, SyrupError> {
        Ok(Value::record(variant, vec![to_value(value)?]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, SyrupError> {
        Ok(SeqBuilder {
            label: None,
            items: Vec::with_capacity(len.unwrap_or(0).min(4096)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, SyrupError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, SyrupError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, SyrupError> {
        Ok(SeqBuilder {
            label: Some(variant),
            items: Vec::with_capacity(len.min(4096)),
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, SyrupError> {
        Ok(MapBuilder {
            pairs: Vec::new(),
            key: None,
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<SeqBuilder, SyrupError> {
        Ok(SeqBuilder {
            label: Some(name),
            items: Vec::with_capacity(len.min(4096)),
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, SyrupError> {
        Ok(SeqBuilder {
            label: Some(variant),
            items: Vec::with_capacity(len.min(4096)),
        })
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = SyrupError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SyrupError> {
        self.items.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SyrupError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = SyrupError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SyrupError> {
        self.items.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SyrupError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = SyrupError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SyrupError> {
        self.items.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SyrupError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SeqBuilder {
    type Ok = Value;
    type Error = SyrupError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SyrupError> {
        self.items.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SyrupError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for SeqBuilder {
    type Ok = Value;
    type Error = SyrupError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), SyrupError> {
        self.items.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SyrupError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for SeqBuilder {
    type Ok = Value;
    type Error = SyrupError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), SyrupError> {
        self.items.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, SyrupError> {
        Ok(self.finish())
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = SyrupError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SyrupError> {
        self.key = Some(to_value(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SyrupError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| SyrupError::Message("map value serialized before its key".into()))?;
        self.pairs.push((key, to_value(value)?));
        Ok(())
    }
    fn end(self) -> Result<Value, SyrupError> {
        Ok(Value::Dict(self.pairs))
    }
}
