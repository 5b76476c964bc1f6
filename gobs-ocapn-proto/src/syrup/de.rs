//! Syrup → serde: a [`serde::Deserializer`] over a decoded [`Value`], reading the mapping
//! described in [`super::ser`].

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::{SyrupError, Value};

/// Deserializes a `T` from Syrup bytes (decoded under the default [`super::Limits`]).
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SyrupError> {
    from_value(super::decode(bytes)?)
}

/// Deserializes a `T` from a [`Value`].
///
/// ```
/// use gobs_ocapn_proto::syrup::{from_value, Value};
/// let v: Vec<Option<u32>> = from_value(Value::List(vec![
///     Value::record("some", vec![7.into()]),
///     Value::record("none", vec![]),
/// ])).unwrap();
/// assert_eq!(v, vec![Some(7), None]);
/// ```
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, SyrupError> {
    T::deserialize(value)
}

fn mismatch(expected: &str, got: &Value) -> SyrupError {
    SyrupError::Message(format!("expected {expected}, found a {}", got.kind()))
}

struct Seq {
    items: std::vec::IntoIter<Value>,
}

impl<'de> de::SeqAccess<'de> for Seq {
    type Error = SyrupError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, SyrupError> {
        match self.items.next() {
            Some(v) => seed.deserialize(v).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map {
    pairs: std::vec::IntoIter<(Value, Value)>,
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for Map {
    type Error = SyrupError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SyrupError> {
        match self.pairs.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, SyrupError> {
        let v = self
            .value
            .take()
            .ok_or_else(|| SyrupError::Message("map value asked before its key".into()))?;
        seed.deserialize(v)
    }
}

struct Enum {
    variant: String,
    args: Vec<Value>,
}

impl<'de> de::EnumAccess<'de> for Enum {
    type Error = SyrupError;
    type Variant = Self;
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), SyrupError> {
        let v = seed.deserialize(de::value::StrDeserializer::<SyrupError>::new(&self.variant))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for Enum {
    type Error = SyrupError;
    fn unit_variant(self) -> Result<(), SyrupError> {
        if self.args.is_empty() {
            Ok(())
        } else {
            Err(SyrupError::Message(format!(
                "variant {} takes no fields, found {}",
                self.variant,
                self.args.len()
            )))
        }
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, SyrupError> {
        let n = self.args.len();
        let mut it = self.args.into_iter();
        match (it.next(), n) {
            (Some(v), 1) => seed.deserialize(v),
            _ => Err(SyrupError::Message(format!(
                "variant {} takes one field, found {n}",
                self.variant
            ))),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, SyrupError> {
        visitor.visit_seq(Seq {
            items: self.args.into_iter(),
        })
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SyrupError> {
        visitor.visit_seq(Seq {
            items: self.args.into_iter(),
        })
    }
}

impl<'de> IntoDeserializer<'de, SyrupError> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

macro_rules! int_method {
    ($name:ident, $visit:ident, $t:ty) => {
        fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
            match self {
                Value::Int(i) => {
                    let v = <$t>::try_from(i).map_err(|_| {
                        SyrupError::Message(format!(
                            "integer {i} does not fit a {}",
                            stringify!($t)
                        ))
                    })?;
                    visitor.$visit(v)
                }
                other => Err(mismatch("an integer", &other)),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = SyrupError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => match i64::try_from(i) {
                Ok(i) => visitor.visit_i64(i),
                Err(_) => visitor.visit_i128(i),
            },
            Value::F32(x) => visitor.visit_f32(x),
            Value::F64(x) => visitor.visit_f64(x),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::String(s) | Value::Symbol(s) => visitor.visit_string(s),
            Value::List(l) | Value::Set(l) => visitor.visit_seq(Seq {
                items: l.into_iter(),
            }),
            Value::Dict(d) => visitor.visit_map(Map {
                pairs: d.into_iter(),
                value: None,
            }),
            Value::Record(_, args) => visitor.visit_seq(Seq {
                items: args.into_iter(),
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::Bool(b) => visitor.visit_bool(b),
            other => Err(mismatch("a boolean", &other)),
        }
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_i128, visit_i128, i128);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);
    int_method!(deserialize_u128, visit_u128, u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::F32(x) => visitor.visit_f32(x),
            other => Err(mismatch("a single float", &other)),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::F64(x) => visitor.visit_f64(x),
            other => Err(mismatch("a double float", &other)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::String(s) => visitor.visit_string(s),
            other => Err(mismatch("a string", &other)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            other => Err(mismatch("a byte string", &other)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::Record(label, mut args) => match (label.as_symbol(), args.len()) {
                (Some("none"), 0) => visitor.visit_none(),
                (Some("some"), 1) => match args.pop() {
                    Some(v) => visitor.visit_some(v),
                    None => visitor.visit_none(),
                },
                _ => Err(SyrupError::Message(
                    "expected an option, <none> or <some x>, found another record".into(),
                )),
            },
            other => Err(mismatch("an option, <none> or <some x>", &other)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::List(l) if l.is_empty() => visitor.visit_unit(),
            other => Err(mismatch("unit, an empty list", &other)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SyrupError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SyrupError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::List(l) | Value::Set(l) => visitor.visit_seq(Seq {
                items: l.into_iter(),
            }),
            other => Err(mismatch("a list", &other)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, SyrupError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, SyrupError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::Dict(d) => visitor.visit_map(Map {
                pairs: d.into_iter(),
                value: None,
            }),
            other => Err(mismatch("a dictionary", &other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SyrupError> {
        match self {
            Value::Record(label, args) => {
                if label.as_symbol() != Some(name) {
                    return Err(SyrupError::Message(format!(
                        "expected a <{name} ...> record, found a record labelled {label:?}"
                    )));
                }
                if args.len() != fields.len() {
                    return Err(SyrupError::Message(format!(
                        "<{name}> has {} fields, the record carries {}",
                        fields.len(),
                        args.len()
                    )));
                }
                visitor.visit_seq(Seq {
                    items: args.into_iter(),
                })
            }
            other => Err(mismatch(&format!("a <{name} ...> record"), &other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SyrupError> {
        match self {
            Value::Symbol(s) => visitor.visit_enum(Enum {
                variant: s,
                args: vec![],
            }),
            Value::Record(label, args) => match *label {
                Value::Symbol(s) => visitor.visit_enum(Enum { variant: s, args }),
                other => Err(mismatch("a record labelled by a symbol", &other)),
            },
            other => Err(mismatch(&format!("a {name} variant"), &other)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        match self {
            Value::String(s) | Value::Symbol(s) => visitor.visit_string(s),
            other => Err(mismatch("an identifier", &other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SyrupError> {
        visitor.visit_unit()
    }
}
