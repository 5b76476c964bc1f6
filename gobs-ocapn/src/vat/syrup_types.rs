//! Syrup's kinds that MessagePack lacks, as Rust types a by-name method can take and return:
//! [`Symbol`], [`BigInt`] (integers wider than 64 bits) and [`Record`] (Syrup records, the
//! spec's Tagged values).
//!
//! A call by name carries its arguments as MessagePack; these travel in it as extensions
//! ([`SYMBOL_EXT`], [`INT_EXT`], [`RECORD_EXT`]) that the bridge turns into Syrup and back.
//! A symbol a peer sends arrives as a MessagePack string, so a `String` parameter takes a
//! symbol as its name and a [`Symbol`] parameter takes a symbol (or a string, the same way);
//! a [`Symbol`] a method returns goes back as a Syrup symbol.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// The MessagePack extension type of a symbol (`'s'`): its name, UTF-8.
pub const SYMBOL_EXT: i8 = 0x73;
/// The MessagePack extension type of an integer beyond 64 bits (`'i'`): 16 bytes, big-endian
/// two's complement.
pub const INT_EXT: i8 = 0x69;
/// The MessagePack extension type of a record (`'r'`): the MessagePack array
/// `[label, [fields…]]`.
pub const RECORD_EXT: i8 = 0x72;

/// A Syrup symbol (`3'abc`), distinct from a string on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(pub String);

impl Symbol {
    /// A symbol with this name.
    pub fn new(name: impl Into<String>) -> Symbol {
        Symbol(name.into())
    }

    /// Its name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Syrup integer of up to 128 bits. Syrup integers are unbounded; a wider one is refused
/// where it is decoded, with an error naming it. Within 64 bits it travels as a plain
/// MessagePack integer, so a `BigInt` parameter takes any integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BigInt(pub i128);

/// A Syrup record `<label fields…>`: the label a symbol, the fields whatever `F`
/// (de)serializes as a sequence (a tuple, a `Vec`).
#[derive(Clone, Debug, PartialEq)]
pub struct Record<F> {
    /// The label.
    pub label: Symbol,
    /// The fields.
    pub fields: F,
}

/// Bytes serialized as MessagePack binary (the data of an extension).
struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

fn ext<S: Serializer>(s: S, tag: i8, data: &[u8]) -> Result<S::Ok, S::Error> {
    s.serialize_newtype_struct(rmp_serde::MSGPACK_EXT_STRUCT_NAME, &(tag, Bin(data)))
}

/// Reads an extension's (tag, data) from rmp-serde's `_ExtStruct` form.
fn ext_parts<'de, D: Deserializer<'de>>(d: D) -> Result<(i8, Vec<u8>), D::Error> {
    struct Data(Vec<u8>);
    impl<'de> Deserialize<'de> for Data {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Data;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("extension data")
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Data, E> {
                    Ok(Data(v.to_vec()))
                }
            }
            d.deserialize_bytes(V)
        }
    }
    let (tag, data): (i8, Data) = Deserialize::deserialize(d)?;
    Ok((tag, data.0))
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ext(s, SYMBOL_EXT, self.0.as_bytes())
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Symbol, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Symbol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a symbol")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Symbol, E> {
                Ok(Symbol::new(v))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Symbol, D::Error> {
                match ext_parts(d)? {
                    (SYMBOL_EXT, data) => String::from_utf8(data)
                        .map(Symbol)
                        .map_err(|_| de::Error::custom("a symbol's name is not UTF-8")),
                    (tag, _) => Err(de::Error::custom(format!(
                        "expected a symbol, found MessagePack extension {tag}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for BigInt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Ok(i) = i64::try_from(self.0) {
            s.serialize_i64(i)
        } else if let Ok(u) = u64::try_from(self.0) {
            s.serialize_u64(u)
        } else {
            ext(s, INT_EXT, &self.0.to_be_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for BigInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BigInt, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BigInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BigInt, E> {
                Ok(BigInt(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BigInt, E> {
                Ok(BigInt(v.into()))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<BigInt, D::Error> {
                match ext_parts(d)? {
                    (INT_EXT, data) => data
                        .as_slice()
                        .try_into()
                        .map(|b| BigInt(i128::from_be_bytes(b)))
                        .map_err(|_| de::Error::custom("a wide integer is not 16 bytes")),
                    (tag, _) => Err(de::Error::custom(format!(
                        "expected an integer, found MessagePack extension {tag}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<F: Serialize> Serialize for Record<F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let data =
            rmp_serde::to_vec(&(&self.label, &self.fields)).map_err(serde::ser::Error::custom)?;
        ext(s, RECORD_EXT, &data)
    }
}

impl<'de, F: serde::de::DeserializeOwned> Deserialize<'de> for Record<F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Record<F>, D::Error> {
        struct V<F>(std::marker::PhantomData<F>);
        impl<'de, F: serde::de::DeserializeOwned> Visitor<'de> for V<F> {
            type Value = Record<F>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Record<F>, D::Error> {
                match ext_parts(d)? {
                    (RECORD_EXT, data) => {
                        let (label, fields): (Symbol, F) = rmp_serde::from_slice(&data)
                            .map_err(|e| de::Error::custom(format!("the record's fields: {e}")))?;
                        Ok(Record { label, fields })
                    }
                    (tag, _) => Err(de::Error::custom(format!(
                        "expected a record, found MessagePack extension {tag}"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Record<F>, A::Error> {
                Err(de::Error::custom("expected a record, found a list"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
