//! The Syrup encoder: any [`Value`] to its one canonical byte string.
//!
//! Dictionaries are written sorted by the encoded bytes of their keys, sets by the encoded
//! bytes of their items, so two equal values always encode to the same bytes (signatures
//! over Syrup depend on it).

use super::Value;

/// Encodes `value` canonically.
///
/// ```
/// use gobs_ocapn_proto::syrup::{encode, Value};
/// let dict = Value::Dict(vec![(Value::symbol("b"), 1.into()), (Value::symbol("a"), (-2).into())]);
/// assert_eq!(encode(&dict), b"{1'a2-1'b1+}");
/// ```
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Bool(true) => out.push(b't'),
        Value::Bool(false) => out.push(b'f'),
        Value::Int(i) => {
            write_decimal(i.unsigned_abs(), out);
            out.push(if *i < 0 { b'-' } else { b'+' });
        }
        Value::F32(x) => {
            out.push(b'F');
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        Value::F64(x) => {
            out.push(b'D');
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        Value::Bytes(b) => netstring(b, b':', out),
        Value::String(s) => netstring(s.as_bytes(), b'"', out),
        Value::Symbol(s) => netstring(s.as_bytes(), b'\'', out),
        Value::List(items) => {
            out.push(b'[');
            for item in items {
                encode_into(item, out);
            }
            out.push(b']');
        }
        Value::Dict(pairs) => {
            let mut encoded: Vec<(Vec<u8>, &Value)> =
                pairs.iter().map(|(k, v)| (encode(k), v)).collect();
            encoded.sort_by(|a, b| a.0.cmp(&b.0));
            out.push(b'{');
            for (key, val) in encoded {
                out.extend_from_slice(&key);
                encode_into(val, out);
            }
            out.push(b'}');
        }
        Value::Set(items) => {
            let mut encoded: Vec<Vec<u8>> = items.iter().map(encode).collect();
            encoded.sort();
            out.push(b'#');
            for item in encoded {
                out.extend_from_slice(&item);
            }
            out.push(b'$');
        }
        Value::Record(label, args) => {
            out.push(b'<');
            encode_into(label, out);
            for arg in args {
                encode_into(arg, out);
            }
            out.push(b'>');
        }
    }
}

/// Opens a record labelled `label` (a symbol): the same bytes as the start of an encoded
/// [`Value::Record`], for a hot message written without building its value first. Its
/// fields follow, each encoded in turn, then [`close_record`].
pub(crate) fn open_record(label: &str, out: &mut Vec<u8>) {
    out.push(b'<');
    netstring(label.as_bytes(), b'\'', out);
}

/// Closes a record opened with [`open_record`].
pub(crate) fn close_record(out: &mut Vec<u8>) {
    out.push(b'>');
}

/// A non-negative integer, as [`Value::Int`] encodes it.
pub(crate) fn encode_uint(n: u64, out: &mut Vec<u8>) {
    write_decimal(u128::from(n), out);
    out.push(b'+');
}

/// Writes `n` in decimal without allocating.
pub(crate) fn write_decimal(n: u128, out: &mut Vec<u8>) {
    // Most on the wire are under 100 (labels' lengths, positions, counts): their one or
    // two digits at once.
    if n < 100 {
        // Both below 10.
        let (tens, ones) = ((n / 10) as u8, (n % 10) as u8);
        if tens > 0 {
            out.push(b'0' + tens);
        }
        out.push(b'0' + ones);
        return;
    }
    // Almost every other integer fits 64 bits, whose digits cost fewer instructions than
    // 128-bit ones.
    let mut digits = itoa::Buffer::new();
    let text = match u64::try_from(n) {
        Ok(n) => digits.format(n),
        Err(_) => digits.format(n),
    };
    out.extend_from_slice(text.as_bytes());
}

pub(crate) fn netstring(bytes: &[u8], joiner: u8, out: &mut Vec<u8>) {
    write_decimal(bytes.len() as u128, out);
    out.push(joiner);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::write_decimal;

    #[test]
    fn decimals_are_written_as_rust_formats_them_on_both_sides_of_64_bits() {
        let edges = [
            0,
            9,
            10,
            42,
            99,
            100,
            101,
            u128::from(u64::MAX) - 1,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
            u128::MAX,
        ];
        for n in edges {
            let mut out = b"x".to_vec();
            write_decimal(n, &mut out);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }
}
