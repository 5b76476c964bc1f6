//! Plain data between CapTP terms and MessagePack, read and written straight, without
//! building rmpv's value tree in between: what a far call's arguments and answer almost
//! always are (booleans, integers, floats, strings, byte strings, lists of them).
//!
//! Each function answers `None` for anything else — a reference, a dictionary, a record,
//! a set, a symbol or an integer past 64 bits in MessagePack's extensions — and the
//! caller then goes the general way ([`super::bridge`]), which gives the same bytes and
//! terms for plain data (a test checks it).

use rmp::Marker;
use rmp::decode::RmpRead;

use crate::captp::Term;
use crate::syrup::Value;

/// Deepest nesting read here; deeper data goes the general way.
const MAX_DEPTH: usize = 32;

/// `terms` as a MessagePack array, if all are plain.
pub(crate) fn array_to_msgpack(terms: &[Term]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(16);
    write_array(terms, &mut out, 0)?;
    Some(out)
}

/// `term` as MessagePack, if plain.
pub(crate) fn to_msgpack(term: &Term) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(16);
    write(term, &mut out, 0)?;
    Some(out)
}

fn write_array(terms: &[Term], out: &mut Vec<u8>, depth: usize) -> Option<()> {
    let len = u32::try_from(terms.len()).ok()?;
    rmp::encode::write_array_len(out, len).ok()?;
    terms.iter().try_for_each(|t| write(t, out, depth + 1))
}

fn write(term: &Term, out: &mut Vec<u8>, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match term {
        Term::Data(v) => write_value(v, out, depth),
        Term::List(l) => write_array(l, out, depth),
        _ => None,
    }
}

/// As [`super::bridge::to_msgpack`] writes it, for plain data.
fn write_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> Option<()> {
    match v {
        Value::Bool(b) => rmp::encode::write_bool(out, *b).ok(),
        Value::Int(i) => {
            // rmpv writes a non-negative integer as unsigned, a negative one as signed,
            // each in its shortest form.
            if let Ok(u) = u64::try_from(*i) {
                rmp::encode::write_uint(out, u).ok().map(drop)
            } else {
                let i = i64::try_from(*i).ok()?;
                rmp::encode::write_sint(out, i).ok().map(drop)
            }
        }
        Value::F32(x) => rmp::encode::write_f32(out, *x).ok(),
        Value::F64(x) => rmp::encode::write_f64(out, *x).ok(),
        Value::String(s) | Value::Symbol(s) => rmp::encode::write_str(out, s).ok(),
        Value::Bytes(b) => rmp::encode::write_bin(out, b).ok(),
        Value::List(l) => {
            let len = u32::try_from(l.len()).ok()?;
            rmp::encode::write_array_len(out, len).ok()?;
            if depth >= MAX_DEPTH {
                return None;
            }
            l.iter().try_for_each(|v| write_value(v, out, depth + 1))
        }
        // Records, dictionaries and sets take extensions or maps.
        _ => None,
    }
}

/// The first MessagePack value of `bytes` as a term, if plain (as
/// [`super::bridge::term_from_msgpack`] reads it: nil as the empty list, a string as a
/// string).
pub(crate) fn from_msgpack(bytes: &[u8]) -> Option<Term> {
    read(&mut &bytes[..], 0)
}

/// A call's arguments, a MessagePack array, as terms, if plain (as
/// [`super::terms::args_out`] reads them: trailing nils left out, a value that is not an
/// array as the one argument, or none if it reads as the empty list).
pub(crate) fn args_from_msgpack(bytes: &[u8]) -> Option<Vec<Term>> {
    const NIL: u8 = 0xc0;
    let rd = &mut &bytes[..];
    let len = match rmp::decode::read_marker(&mut &rd[..]).ok()? {
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            rmp::decode::read_array_len(rd).ok()?
        }
        _ => {
            return Some(match read(rd, 0)? {
                Term::List(args) => args,
                other => vec![other],
            });
        }
    };
    let len = usize::try_from(len).ok()?;
    if len > rd.len() {
        return None;
    }
    let mut args = Vec::with_capacity(len);
    // Past the last item that is not nil.
    let mut kept = 0;
    for _ in 0..len {
        let nil = rd.first() == Some(&NIL);
        args.push(read(rd, 1)?);
        if !nil {
            kept = args.len();
        }
    }
    args.truncate(kept);
    Some(args)
}

fn read(rd: &mut &[u8], depth: usize) -> Option<Term> {
    let int = |n: i128| Some(Term::Data(Value::Int(n)));
    match rmp::decode::read_marker(rd).ok()? {
        Marker::Null => Some(Term::List(vec![])),
        Marker::True => Some(Term::Data(Value::Bool(true))),
        Marker::False => Some(Term::Data(Value::Bool(false))),
        Marker::FixPos(n) => int(n.into()),
        Marker::FixNeg(n) => int(n.into()),
        Marker::U8 => int(rd.read_data_u8().ok()?.into()),
        Marker::U16 => int(rd.read_data_u16().ok()?.into()),
        Marker::U32 => int(rd.read_data_u32().ok()?.into()),
        Marker::U64 => int(rd.read_data_u64().ok()?.into()),
        Marker::I8 => int(rd.read_data_i8().ok()?.into()),
        Marker::I16 => int(rd.read_data_i16().ok()?.into()),
        Marker::I32 => int(rd.read_data_i32().ok()?.into()),
        Marker::I64 => int(rd.read_data_i64().ok()?.into()),
        Marker::F32 => Some(Term::Data(Value::F32(rd.read_data_f32().ok()?))),
        Marker::F64 => Some(Term::Data(Value::F64(rd.read_data_f64().ok()?))),
        Marker::FixStr(n) => string(rd, n.into()),
        Marker::Str8 => {
            let n = rd.read_data_u8().ok()?.into();
            string(rd, n)
        }
        Marker::Str16 => {
            let n = rd.read_data_u16().ok()?.into();
            string(rd, n)
        }
        Marker::Str32 => {
            let n = rd.read_data_u32().ok()?;
            string(rd, n)
        }
        Marker::Bin8 => {
            let n = rd.read_data_u8().ok()?.into();
            bytes(rd, n)
        }
        Marker::Bin16 => {
            let n = rd.read_data_u16().ok()?.into();
            bytes(rd, n)
        }
        Marker::Bin32 => {
            let n = rd.read_data_u32().ok()?;
            bytes(rd, n)
        }
        Marker::FixArray(n) => array(rd, n.into(), depth),
        Marker::Array16 => {
            let n = rd.read_data_u16().ok()?.into();
            array(rd, n, depth)
        }
        Marker::Array32 => {
            let n = rd.read_data_u32().ok()?;
            array(rd, n, depth)
        }
        // Maps and extensions (references, symbols, records, wide integers).
        _ => None,
    }
}

fn take<'a>(rd: &mut &'a [u8], len: u32) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    let (taken, rest) = (rd.get(..len)?, rd.get(len..)?);
    *rd = rest;
    Some(taken)
}

fn string(rd: &mut &[u8], len: u32) -> Option<Term> {
    let s = std::str::from_utf8(take(rd, len)?).ok()?;
    Some(Term::str(s))
}

fn bytes(rd: &mut &[u8], len: u32) -> Option<Term> {
    Some(Term::Data(Value::Bytes(take(rd, len)?.to_vec())))
}

fn array(rd: &mut &[u8], len: u32, depth: usize) -> Option<Term> {
    if depth >= MAX_DEPTH {
        return None;
    }
    // Each item takes a byte at least: a length past what is left is not all there.
    let len = usize::try_from(len).ok()?;
    if len > rd.len() {
        return None;
    }
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        items.push(read(rd, depth + 1)?);
    }
    Some(Term::List(items))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::vat::bridge::{self, encode};

    fn plain_terms() -> Vec<Term> {
        let mut terms = vec![
            Term::List(vec![]),
            Term::Data(Value::Bool(true)),
            Term::Data(Value::Bool(false)),
            Term::str(""),
            Term::str("héllo"),
            Term::str(&"x".repeat(300)),
            Term::Data(Value::Bytes(vec![1, 2, 3])),
            Term::Data(Value::Bytes(vec![9; 70_000])),
            Term::Data(Value::F32(1.5)),
            Term::Data(Value::F64(-2.25)),
            Term::List(vec![Term::str("a"), Term::List(vec![Term::Data(7.into())])]),
            Term::Data(Value::List(vec![Value::from(1), Value::from("b")])),
        ];
        for n in [
            0i128,
            1,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            u32::MAX.into(),
            u64::MAX.into(),
            -1,
            -32,
            -33,
            -128,
            -129,
            -32_768,
            -32_769,
            i32::MIN.into(),
            i64::MIN.into(),
        ] {
            terms.push(Term::Data(Value::Int(n)));
        }
        terms
    }

    /// The general way's bytes of a term.
    fn general_bytes(t: &Term) -> Vec<u8> {
        let mut refs = Vec::new();
        let value = bridge::term_to_msgpack(t, &mut |_| unreachable!(), &mut refs).unwrap();
        encode(&value).unwrap()
    }

    /// The general way's term of some bytes.
    fn general_term(bytes: &[u8]) -> Term {
        let value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        bridge::term_from_msgpack(&value, &mut |_| unreachable!()).unwrap()
    }

    #[test]
    fn plain_data_is_written_and_read_as_the_general_way_does() {
        let terms = plain_terms();
        for t in &terms {
            let bytes = to_msgpack(t).unwrap();
            assert_eq!(bytes, general_bytes(t), "{t:?}");
            assert_eq!(
                format!("{:?}", from_msgpack(&bytes).unwrap()),
                format!("{:?}", general_term(&bytes)),
                "{t:?}"
            );
        }
        let all = array_to_msgpack(&terms).unwrap();
        assert_eq!(all, general_bytes(&Term::List(terms.clone())));
        // Nil reads as the empty list.
        assert_eq!(
            format!("{:?}", from_msgpack(&[0xc0]).unwrap()),
            format!("{:?}", general_term(&[0xc0]))
        );
    }

    /// The general way's arguments of an array, as `terms::args_out` reads them.
    fn general_args(bytes: &[u8]) -> Vec<Term> {
        let mut value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        if let rmpv::Value::Array(args) = &mut value {
            while matches!(args.last(), Some(rmpv::Value::Nil)) {
                args.pop();
            }
        }
        match bridge::term_from_msgpack(&value, &mut |_| unreachable!()).unwrap() {
            Term::List(args) => args,
            other => vec![other],
        }
    }

    #[test]
    fn arguments_are_read_as_the_general_way_reads_them() {
        use rmpv::Value as M;
        let arrays = [
            M::Array(vec![M::from(42), M::Nil, M::Nil]),
            M::Array(vec![M::Nil, M::from("x"), M::Nil]),
            M::Array(vec![M::Nil]),
            M::Array(vec![]),
            M::Array(vec![M::Array(vec![M::Nil]), M::from(-5)]),
            M::Nil,
            M::from(7),
            M::from("alone"),
        ];
        for a in arrays {
            let bytes = encode(&a).unwrap();
            assert_eq!(
                format!("{:?}", args_from_msgpack(&bytes).unwrap()),
                format!("{:?}", general_args(&bytes)),
                "{a:?}"
            );
        }
        let map = encode(&M::Array(vec![M::Map(vec![])])).unwrap();
        assert!(args_from_msgpack(&map).is_none());
    }

    #[test]
    fn anything_else_is_left_to_the_general_way() {
        let others = [
            Term::Data(Value::Int(i128::MAX)),
            Term::Dict(vec![(Term::str("k"), Term::str("v"))]),
            Term::Record(Box::new(Term::sym("point")), vec![]),
            Term::List(vec![Term::str("ok"), Term::Dict(vec![])]),
        ];
        for t in &others {
            assert!(to_msgpack(t).is_none(), "{t:?}");
            assert!(from_msgpack(&general_bytes(t)).is_none(), "{t:?}");
        }
        // Not all there, not UTF-8, too deep.
        assert!(from_msgpack(&[0x92, 0x01]).is_none());
        assert!(from_msgpack(&[0xa2, b'a']).is_none());
        assert!(from_msgpack(&[0xa1, 0xff]).is_none());
        let mut deep = Term::List(vec![]);
        for _ in 0..=MAX_DEPTH {
            deep = Term::List(vec![deep]);
        }
        assert!(to_msgpack(&deep).is_none());
        assert!(from_msgpack(&general_bytes(&deep)).is_none());
    }
}
