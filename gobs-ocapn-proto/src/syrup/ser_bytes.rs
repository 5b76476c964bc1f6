//! serde → Syrup bytes directly, without building a [`super::Value`] first: the fast path
//! behind [`super::to_bytes`]. It writes exactly what encoding [`super::to_value`]'s result
//! would (the mapping documented in [`super::ser`]); only maps are buffered, to sort their
//! entries by encoded key.

use serde::ser::{self, Serialize};

use super::SyrupError;
use super::encode::{netstring, write_decimal};

/// Serializes into a byte buffer.
pub(crate) struct ByteSerializer<'a> {
    pub(crate) out: &'a mut Vec<u8>,
}

fn int(out: &mut Vec<u8>, v: i128) {
    write_decimal(v.unsigned_abs(), out);
    out.push(if v < 0 { b'-' } else { b'+' });
}

fn symbol(out: &mut Vec<u8>, s: &str) {
    netstring(s.as_bytes(), b'\'', out);
}

/// Writes the items of a list or record, then its closing byte.
pub(crate) struct Compound<'a> {
    out: &'a mut Vec<u8>,
    close: u8,
}

/// Buffers a map's entries to sort them.
pub(crate) struct MapBytes<'a> {
    out: &'a mut Vec<u8>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    key: Option<Vec<u8>>,
}

fn nested<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, SyrupError> {
    let mut buf = Vec::new();
    v.serialize(ByteSerializer { out: &mut buf })?;
    Ok(buf)
}

impl<'a> ser::Serializer for ByteSerializer<'a> {
    type Ok = ();
    type Error = SyrupError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = MapBytes<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), SyrupError> {
        self.out.push(if v { b't' } else { b'f' });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), SyrupError> {
        int(self.out, v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), SyrupError> {
        int(self.out, v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), SyrupError> {
        int(self.out, v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), SyrupError> {
        int(self.out, v.into());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), SyrupError> {
        int(self.out, v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), SyrupError> {
        int(self.out, v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), SyrupError> {
        int(self.out, v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), SyrupError> {
        int(self.out, v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), SyrupError> {
        int(self.out, v.into());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), SyrupError> {
        let v = i128::try_from(v)
            .map_err(|_| SyrupError::Message("integer does not fit an i128".into()))?;
        int(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), SyrupError> {
        self.out.push(b'F');
        self.out.extend_from_slice(&v.to_bits().to_be_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), SyrupError> {
        self.out.push(b'D');
        self.out.extend_from_slice(&v.to_bits().to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), SyrupError> {
        let mut b = [0u8; 4];
        netstring(v.encode_utf8(&mut b).as_bytes(), b'"', self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), SyrupError> {
        netstring(v.as_bytes(), b'"', self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), SyrupError> {
        netstring(v, b':', self.out);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), SyrupError> {
        self.out.extend_from_slice(b"<4'none>");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), SyrupError> {
        self.out.extend_from_slice(b"<4'some");
        value.serialize(ByteSerializer { out: self.out })?;
        self.out.push(b'>');
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), SyrupError> {
        self.out.extend_from_slice(b"[]");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), SyrupError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
    ) -> Result<(), SyrupError> {
        symbol(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), SyrupError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), SyrupError> {
        self.out.push(b'<');
        symbol(self.out, variant);
        value.serialize(ByteSerializer { out: self.out })?;
        self.out.push(b'>');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, SyrupError> {
        self.out.push(b'[');
        Ok(Compound {
            out: self.out,
            close: b']',
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, SyrupError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, SyrupError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, SyrupError> {
        self.out.push(b'<');
        symbol(self.out, variant);
        Ok(Compound {
            out: self.out,
            close: b'>',
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBytes<'a>, SyrupError> {
        Ok(MapBytes {
            out: self.out,
            entries: Vec::new(),
            key: None,
        })
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Compound<'a>, SyrupError> {
        self.out.push(b'<');
        symbol(self.out, name);
        Ok(Compound {
            out: self.out,
            close: b'>',
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _i: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, SyrupError> {
        self.out.push(b'<');
        symbol(self.out, variant);
        Ok(Compound {
            out: self.out,
            close: b'>',
        })
    }
}

impl Compound<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SyrupError> {
        value.serialize(ByteSerializer { out: self.out })
    }
    fn close(self) -> Result<(), SyrupError> {
        self.out.push(self.close);
        Ok(())
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = SyrupError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SyrupError> {
                self.item(value)
            }
            fn end(self) -> Result<(), SyrupError> {
                self.close()
            }
        }
    };
}
compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = SyrupError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), SyrupError> {
        self.item(value)
    }
    fn end(self) -> Result<(), SyrupError> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = SyrupError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), SyrupError> {
        self.item(value)
    }
    fn end(self) -> Result<(), SyrupError> {
        self.close()
    }
}

impl ser::SerializeMap for MapBytes<'_> {
    type Ok = ();
    type Error = SyrupError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SyrupError> {
        self.key = Some(nested(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SyrupError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| SyrupError::Message("map value serialized before its key".into()))?;
        self.entries.push((key, nested(value)?));
        Ok(())
    }
    fn end(mut self) -> Result<(), SyrupError> {
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.out.push(b'{');
        for (k, v) in &self.entries {
            self.out.extend_from_slice(k);
            self.out.extend_from_slice(v);
        }
        self.out.push(b'}');
        Ok(())
    }
}
