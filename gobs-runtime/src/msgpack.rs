//! One MessagePack value read off the front of a byte slice, borrowing from it.
//!
//! rmp-serde reads a value in place only through `from_slice`, which does not say where
//! the value ended; its reader over `&mut &[u8]` does, but allocates a buffer per
//! deserializer and copies every string through it. A portrait is a run of values (its
//! fields, an entry's key and value), read one at a time: [`decode_one`] finds where the
//! first value ends (a walk over its markers, no allocation), decodes exactly those bytes
//! in place, and moves the slice past them.

use serde::de::DeserializeOwned;

/// Decodes the value at the front of `input` and moves `input` past it.
///
/// Bytes that do not hold a whole value are decoded by rmp-serde's reader as they are, so
/// that the error is the one it gives.
pub(crate) fn decode_one<T: DeserializeOwned>(
    input: &mut &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    let Some(len) = value_len(input) else {
        let mut de = rmp_serde::Deserializer::new(&mut *input);
        return T::deserialize(&mut de);
    };
    let (value, rest) = input.split_at(len);
    let out = rmp_serde::from_slice(value)?;
    *input = rest;
    Ok(out)
}

/// The length in bytes of the MessagePack value at the front of `input`; `None` when the
/// bytes end before it does, or hold a marker MessagePack never uses.
pub(crate) fn value_len(input: &[u8]) -> Option<usize> {
    // Most fields are scalars, whose length their marker (and the byte after) gives.
    let whole = |len: usize| (len <= input.len()).then_some(len);
    match *input.first()? {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => return Some(1),
        marker @ 0xa0..=0xbf => return whole(1 + usize::from(marker & 0x1f)),
        0xcc | 0xd0 => return whole(2),
        0xcd | 0xd1 => return whole(3),
        0xca | 0xce | 0xd2 => return whole(5),
        0xcb | 0xcf | 0xd3 => return whole(9),
        0xd9 => return whole(2 + usize::from(*input.get(1)?)),
        _ => {}
    }
    let mut at = 0usize;
    // Values still to walk over: a container's elements are counted in as its marker is
    // read, so nesting needs no stack.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *input.get(at)?;
        at += 1;
        // Bytes that follow the marker (beyond a length field), and elements it opens.
        let (skip, elements): (usize, u64) = match marker {
            // Most markers of a portrait stand alone (small ints, nil, booleans), or open
            // a small array (a reference, a tuple): no bytes to skip.
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => continue,
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xc1 => return None,
            // bin 8/16/32, str 8/16/32.
            0xc4 | 0xd9 => (read_len(input, &mut at, 1)?, 0),
            0xc5 | 0xda => (read_len(input, &mut at, 2)?, 0),
            0xc6 | 0xdb => (read_len(input, &mut at, 4)?, 0),
            // ext 8/16/32: the length, then a type byte and the data.
            0xc7 => (read_len(input, &mut at, 1)?.checked_add(1)?, 0),
            0xc8 => (read_len(input, &mut at, 2)?.checked_add(1)?, 0),
            0xc9 => (read_len(input, &mut at, 4)?.checked_add(1)?, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            // fixext 1/2/4/8/16: a type byte and the data.
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, read_len(input, &mut at, 2)? as u64),
            0xdd => (0, read_len(input, &mut at, 4)? as u64),
            0xde => (0, 2 * read_len(input, &mut at, 2)? as u64),
            0xdf => (0, 2 * read_len(input, &mut at, 4)? as u64),
        };
        if skip > 0 {
            at = at.checked_add(skip)?;
            if at > input.len() {
                return None;
            }
        }
        if elements > 0 {
            pending += elements;
            // Each element takes a byte at least: a count beyond the bytes left is cut
            // short (and cannot make `pending` overflow).
            if pending > (input.len() - at) as u64 {
                return None;
            }
        }
    }
    Some(at)
}

/// Reads a big-endian length of `width` bytes at `*at`, moving `*at` past it.
fn read_len(input: &[u8], at: &mut usize, width: usize) -> Option<usize> {
    let bytes = input.get(*at..at.checked_add(width)?)?;
    *at += width;
    let n = bytes.iter().fold(0u64, |n, b| n << 8 | u64::from(*b));
    usize::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;

    use rmpv::Value;
    use serde::Deserialize as _;

    use super::*;

    /// Values of every marker family, nested, with lengths at each width's edges.
    fn samples() -> Vec<Value> {
        let s = |n: usize| Value::from("x".repeat(n));
        let b = |n: usize| Value::Binary(vec![7; n]);
        let e = |n: usize| Value::Ext(5, vec![1; n]);
        let mut out = vec![
            Value::Nil,
            Value::from(true),
            Value::from(false),
            Value::from(0),
            Value::from(127),
            Value::from(128),
            Value::from(300),
            Value::from(70_000),
            Value::from(u64::MAX),
            Value::from(-1),
            Value::from(-33),
            Value::from(-200),
            Value::from(-40_000),
            Value::from(i64::MIN),
            Value::F32(1.5),
            Value::F64(-2.25),
        ];
        for n in [0, 31, 32, 255, 256, 65_535, 65_536] {
            out.extend([s(n), b(n)]);
        }
        for n in [1, 2, 4, 8, 16, 0, 3, 255, 256, 70_000] {
            out.push(e(n));
        }
        let small = out.clone();
        for n in [0, 15, 16, 65_535, 65_536] {
            out.push(Value::Array(
                (0..n).map(|i| small[i % small.len()].clone()).collect(),
            ));
        }
        for n in [0, 15, 16, 65_536] {
            let entries = (0..n)
                .map(|i| (Value::from(i), small[i % small.len()].clone()))
                .collect();
            out.push(Value::Map(entries));
        }
        out.push(Value::Array(vec![Value::Array(vec![Value::Map(vec![(
            Value::from("k"),
            Value::Array(vec![Value::Nil, Value::from(1)]),
        )])])]));
        out
    }

    #[test]
    fn the_length_of_each_value_is_where_it_ends() {
        for v in samples() {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, &v).unwrap();
            let end = bytes.len();
            // Bytes after the value are not counted.
            bytes.extend_from_slice(&[0x01, 0xc0, 0x93]);
            assert_eq!(value_len(&bytes), Some(end), "{v:?}");
            // Cut anywhere short of its end, it is not whole.
            for cut in [0, end / 2, end - 1] {
                assert_eq!(value_len(&bytes[..cut]), None, "{v:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn lengths_beyond_the_bytes_and_unused_markers_are_refused() {
        // An array of 2^32 - 1 elements in 5 bytes; a map as long; a str longer than the
        // input; the never-used marker.
        for bytes in [
            &[0xdd, 0xff, 0xff, 0xff, 0xff][..],
            &[0xdf, 0xff, 0xff, 0xff, 0xff],
            &[0xdb, 0xff, 0xff, 0xff, 0xff, 0x61],
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0xc1],
            &[0x92, 0xc1, 0x01],
        ] {
            assert_eq!(value_len(bytes), None, "{bytes:x?}");
        }
    }

    #[test]
    fn values_decode_one_after_another_and_errors_are_rmp_serdes() {
        let mut bytes = Vec::new();
        rmp_serde::encode::write(&mut bytes, &(7u64, "seven".to_string())).unwrap();
        let map: BTreeMap<String, Vec<u32>> = [("a".into(), vec![1, 2]), ("b".into(), vec![])]
            .into_iter()
            .collect();
        rmp_serde::encode::write(&mut bytes, &map).unwrap();
        rmp_serde::encode::write(&mut bytes, &Some(3u8)).unwrap();
        let mut input = &bytes[..];
        let first: (u64, String) = decode_one(&mut input).unwrap();
        let second: BTreeMap<String, Vec<u32>> = decode_one(&mut input).unwrap();
        let third: Option<u8> = decode_one(&mut input).unwrap();
        assert_eq!((first, second, third), ((7, "seven".into()), map, Some(3)));
        assert!(input.is_empty());
        // A whole value of the wrong type, and a value cut short: rmp-serde's errors.
        let mut input = &[0xa1, b'x'][..];
        assert!(decode_one::<u64>(&mut input).is_err());
        let mut input = &[0x92, 0x01][..];
        let cut = decode_one::<(u8, u8)>(&mut input).unwrap_err();
        let mut reader = &[0x92, 0x01][..];
        let expected =
            <(u8, u8)>::deserialize(&mut rmp_serde::Deserializer::new(&mut reader)).unwrap_err();
        assert_eq!(cut.to_string(), expected.to_string());
    }
}
