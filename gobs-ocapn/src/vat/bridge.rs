//! Between CapTP terms and the MessagePack a gobs call by name takes: data converts
//! value by value, and references travel beside the bytes as [`Carried`] entries (a MessagePack extension of type
//! [`CARRIED_EXT`] holds each one's place).
//!
//! MessagePack has no symbols, wide integers, records or sets: symbols arrive as strings
//! (a [`super::Symbol`] parameter takes them, and a `Symbol` result goes back as a
//! symbol), integers beyond 64 bits and records travel as the extensions of
//! [`super::syrup_types`], sets are refused, and a `nil` result (a method returning `()`)
//! becomes `[]`.

use gobs_runtime::carry::{CARRIED_EXT, Carried};

use super::syrup_types::{INT_EXT, RECORD_EXT, SYMBOL_EXT};
use crate::captp::{CapRef, Term};
use crate::syrup::Value;

/// Why a value could not cross between Syrup and MessagePack.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct BridgeError(pub(crate) String);

/// Syrup data → a MessagePack value.
pub fn to_msgpack(v: &Value) -> Result<rmpv::Value, BridgeError> {
    Ok(match v {
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Int(i) => {
            if let Ok(i) = i64::try_from(*i) {
                rmpv::Value::from(i)
            } else if let Ok(u) = u64::try_from(*i) {
                rmpv::Value::from(u)
            } else {
                rmpv::Value::Ext(INT_EXT, i.to_be_bytes().to_vec())
            }
        }
        Value::F32(x) => rmpv::Value::F32(*x),
        Value::F64(x) => rmpv::Value::F64(*x),
        Value::Bytes(b) => rmpv::Value::Binary(b.clone()),
        Value::String(s) | Value::Symbol(s) => rmpv::Value::from(s.as_str()),
        Value::List(l) => rmpv::Value::Array(l.iter().map(to_msgpack).collect::<Result<_, _>>()?),
        Value::Dict(d) => rmpv::Value::Map(
            d.iter()
                .map(|(k, v)| Ok((to_msgpack(k)?, to_msgpack(v)?)))
                .collect::<Result<_, BridgeError>>()?,
        ),
        Value::Record(label, fields) => record_ext(
            to_msgpack(label)?,
            fields.iter().map(to_msgpack).collect::<Result<_, _>>()?,
        )?,
        Value::Set(_) => return Err(no_msgpack(v.kind())),
    })
}

/// A record as [`RECORD_EXT`]: the array `[label, [fields…]]`.
fn record_ext(label: rmpv::Value, fields: Vec<rmpv::Value>) -> Result<rmpv::Value, BridgeError> {
    let array = rmpv::Value::Array(vec![label, rmpv::Value::Array(fields)]);
    Ok(rmpv::Value::Ext(RECORD_EXT, encode(&array)?))
}

fn no_msgpack(kind: &str) -> BridgeError {
    BridgeError(format!(
        "a {kind} cannot be passed to a gobs actor method (MessagePack has none)"
    ))
}

/// A MessagePack value → Syrup data (no references in it).
pub fn from_msgpack(v: &rmpv::Value) -> Result<Value, BridgeError> {
    match term_from_msgpack(v, &mut |_| {
        Err(BridgeError(
            "a reference where plain data was expected".into(),
        ))
    })?
    .to_value()
    {
        Some(v) => Ok(v),
        None => Err(BridgeError(
            "a reference where plain data was expected".into(),
        )),
    }
}

/// A term → MessagePack, each reference replaced by a placeholder for the entry
/// `carry` makes of it.
pub(crate) fn term_to_msgpack(
    t: &Term,
    carry: &mut dyn FnMut(&CapRef) -> Carried,
    refs: &mut Vec<Carried>,
) -> Result<rmpv::Value, BridgeError> {
    Ok(match t {
        Term::Data(v) => to_msgpack(v)?,
        Term::List(l) => rmpv::Value::Array(
            l.iter()
                .map(|t| term_to_msgpack(t, carry, refs))
                .collect::<Result<_, _>>()?,
        ),
        Term::Dict(d) => rmpv::Value::Map(
            d.iter()
                .map(|(k, v)| {
                    Ok((
                        term_to_msgpack(k, carry, refs)?,
                        term_to_msgpack(v, carry, refs)?,
                    ))
                })
                .collect::<Result<_, BridgeError>>()?,
        ),
        Term::Set(_) => return Err(no_msgpack("set")),
        Term::Record(label, fields) => record_ext(
            term_to_msgpack(label, carry, refs)?,
            fields
                .iter()
                .map(|f| term_to_msgpack(f, carry, refs))
                .collect::<Result<_, _>>()?,
        )?,
        Term::Handoff(_) => {
            return Err(BridgeError(
                "an unredeemed third-party handoff cannot be passed to a gobs actor".into(),
            ));
        }
        Term::Ref(r) => {
            let index = u32::try_from(refs.len())
                .map_err(|_| BridgeError("too many references in one message".into()))?;
            refs.push(carry(r));
            rmpv::Value::Ext(CARRIED_EXT, index.to_be_bytes().to_vec())
        }
    })
}

/// MessagePack → a term, each placeholder replaced by what `place` makes of its index.
pub(crate) fn term_from_msgpack(
    v: &rmpv::Value,
    place: &mut dyn FnMut(u32) -> Result<Term, BridgeError>,
) -> Result<Term, BridgeError> {
    Ok(match v {
        rmpv::Value::Nil => Term::List(vec![]),
        rmpv::Value::Boolean(b) => Term::Data(Value::Bool(*b)),
        rmpv::Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(i), _) => Term::Data(Value::from(i)),
            (_, Some(u)) => Term::Data(Value::from(u)),
            _ => return Err(BridgeError("MessagePack integer out of range".into())),
        },
        rmpv::Value::F32(x) => Term::Data(Value::F32(*x)),
        rmpv::Value::F64(x) => Term::Data(Value::F64(*x)),
        rmpv::Value::String(s) => match s.as_str() {
            Some(s) => Term::str(s),
            None => return Err(BridgeError("MessagePack string is not UTF-8".into())),
        },
        rmpv::Value::Binary(b) => Term::Data(Value::Bytes(b.clone())),
        rmpv::Value::Array(a) => Term::List(
            a.iter()
                .map(|v| term_from_msgpack(v, place))
                .collect::<Result<_, _>>()?,
        ),
        rmpv::Value::Map(m) => Term::Dict(
            m.iter()
                .map(|(k, v)| Ok((term_from_msgpack(k, place)?, term_from_msgpack(v, place)?)))
                .collect::<Result<_, BridgeError>>()?,
        ),
        rmpv::Value::Ext(CARRIED_EXT, data) => {
            let index: [u8; 4] = data
                .as_slice()
                .try_into()
                .map_err(|_| BridgeError("a carried reference's index is not 4 bytes".into()))?;
            place(u32::from_be_bytes(index))?
        }
        rmpv::Value::Ext(SYMBOL_EXT, data) => match std::str::from_utf8(data) {
            Ok(name) => Term::sym(name),
            Err(_) => return Err(BridgeError("a symbol's name is not UTF-8".into())),
        },
        rmpv::Value::Ext(INT_EXT, data) => match <[u8; 16]>::try_from(data.as_slice()) {
            Ok(b) => Term::Data(Value::Int(i128::from_be_bytes(b))),
            Err(_) => return Err(BridgeError("a wide integer is not 16 bytes".into())),
        },
        rmpv::Value::Ext(RECORD_EXT, data) => {
            let array = rmpv::decode::read_value(&mut data.as_slice())
                .map_err(|e| BridgeError(format!("a record is not MessagePack: {e}")))?;
            match array {
                rmpv::Value::Array(parts) => match parts.as_slice() {
                    [label, rmpv::Value::Array(fields)] => Term::Record(
                        Box::new(term_from_msgpack(label, place)?),
                        fields
                            .iter()
                            .map(|f| term_from_msgpack(f, place))
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(BridgeError("a record is not [label, [fields…]]".into())),
                },
                _ => return Err(BridgeError("a record is not [label, [fields…]]".into())),
            }
        }
        rmpv::Value::Ext(tag, _) => {
            return Err(BridgeError(format!(
                "MessagePack extension type {tag} has no Syrup form"
            )));
        }
    })
}

pub(crate) fn encode(v: &rmpv::Value) -> Result<Vec<u8>, BridgeError> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, v)
        .map_err(|e| BridgeError(format!("cannot encode the arguments: {e}")))?;
    Ok(bytes)
}
