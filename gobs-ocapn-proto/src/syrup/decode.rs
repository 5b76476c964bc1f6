//! The Syrup decoder, with its limits checked while decoding, before anything is allocated.
//!
//! Only canonical input is accepted (no leading zeros, no `0-`, dictionary keys and set
//! items in strictly increasing order of their encoded bytes), so every accepted input
//! re-encodes to exactly the same bytes: decode→encode is byte-exact, which signatures
//! need. A length is checked against [`Limits::max_len`] before its bytes are copied, a
//! container's items are counted as they are read, and nesting is bounded by
//! [`Limits::max_depth`], so a hostile peer cannot make the decoder allocate or recurse
//! without bound.

use super::{SyrupError, Value};

/// Bounds on what the decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest byte string, string or symbol, in bytes.
    pub max_len: usize,
    /// Most items in one list, set or record, or pairs in one dictionary.
    pub max_count: usize,
    /// Deepest nesting of containers.
    pub max_depth: usize,
}

impl Default for Limits {
    /// 16 MiB strings, 1 Mi items per container, 64 levels of nesting.
    fn default() -> Limits {
        Limits {
            max_len: 16 << 20,
            max_count: 1 << 20,
            max_depth: 64,
        }
    }
}

/// Decodes exactly one value from `input` under the default limits; bytes left over are an
/// error.
///
/// ```
/// use gobs_ocapn_proto::syrup::{decode, Value};
/// assert_eq!(decode(b"[3:abc3\"abc3'abc]").unwrap(), Value::List(vec![
///     Value::Bytes(b"abc".to_vec()), Value::from("abc"), Value::symbol("abc"),
/// ]));
/// assert!(decode(b"{1'b1+1'a2+}").is_err()); // keys out of order: not canonical
/// ```
pub fn decode(input: &[u8]) -> Result<Value, SyrupError> {
    decode_with(input, &Limits::default())
}

/// Decodes exactly one value from `input` under `limits`.
pub fn decode_with(input: &[u8], limits: &Limits) -> Result<Value, SyrupError> {
    let (value, used) = decode_prefix(input, limits)?;
    if used != input.len() {
        return Err(SyrupError::Trailing {
            count: input.len() - used,
        });
    }
    Ok(value)
}

/// Decodes the first value of `input` and says how many bytes it took; for framing a
/// stream. [`SyrupError::Incomplete`] means the value is not all there yet.
pub fn decode_prefix(input: &[u8], limits: &Limits) -> Result<(Value, usize), SyrupError> {
    let mut d = Decoder {
        input,
        pos: 0,
        limits,
    };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

struct Decoder<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    limits: &'l Limits,
}

/// A reader of one frame's bytes for a parser that knows the frame's shape (CapTP's hot
/// ops): it matches the fixed parts byte for byte and decodes the free parts with the
/// decoder itself, under the same limits. Every method answers `None` where the bytes
/// are not exactly what it looks for; the caller then leaves the frame to
/// [`decode_prefix`], which accepts or refuses it with its reason.
pub(crate) struct Cursor<'a, 'l>(Decoder<'a, 'l>);

impl<'a, 'l> Cursor<'a, 'l> {
    pub(crate) fn new(input: &'a [u8], limits: &'l Limits) -> Self {
        Cursor(Decoder {
            input,
            pos: 0,
            limits,
        })
    }

    /// The bytes taken so far.
    pub(crate) fn used(&self) -> usize {
        self.0.pos
    }

    /// Takes `bytes` if the input goes on with them.
    pub(crate) fn eat(&mut self, bytes: &[u8]) -> bool {
        let d = &mut self.0;
        if d.input[d.pos..].starts_with(bytes) {
            d.pos += bytes.len();
            true
        } else {
            false
        }
    }

    /// A non-negative integer in canonical form (`0+`, `42+`) that fits a u64.
    pub(crate) fn uint(&mut self) -> Option<u64> {
        let d = &mut self.0;
        let rest = &d.input[d.pos..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        if rest.get(digits) != Some(&b'+') {
            return None;
        }
        let n = rest[..digits].iter().try_fold(0u64, |n, b| {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })?;
        d.pos += digits + 1;
        Some(n)
    }

    /// The items of a list whose `[` was just taken, the list at nesting `depth` (the
    /// frame's record is at 0): each decoded as [`decode_prefix`] would, under the same
    /// limits of depth, count and length.
    pub(crate) fn list_items(&mut self, depth: usize) -> Option<Vec<Value>> {
        if depth >= self.0.limits.max_depth {
            return None;
        }
        let start = self.0.pos - 1;
        self.0.items(b']', depth, start, false).ok()
    }

    /// The limits it decodes under.
    pub(crate) fn limits(&self) -> &Limits {
        self.0.limits
    }
}

/// Digits of the longest integer that fits an i128 (39 for 170141183460469231731687303715884105727).
const MAX_INT_DIGITS: usize = 39;

impl Decoder<'_, '_> {
    fn peek(&self) -> Result<u8, SyrupError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(SyrupError::Incomplete)
    }

    fn unexpected(&self, byte: u8) -> SyrupError {
        SyrupError::Unexpected {
            byte: char::from(byte),
            offset: self.pos,
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SyrupError> {
        let start = self.pos;
        let b = self.peek()?;
        match b {
            b't' => {
                self.pos += 1;
                Ok(Value::Bool(true))
            }
            b'f' => {
                self.pos += 1;
                Ok(Value::Bool(false))
            }
            b'F' => {
                let bytes = self.fixed::<4>()?;
                Ok(Value::F32(f32::from_bits(u32::from_be_bytes(bytes))))
            }
            b'D' => {
                let bytes = self.fixed::<8>()?;
                Ok(Value::F64(f64::from_bits(u64::from_be_bytes(bytes))))
            }
            b'0'..=b'9' => self.number_or_netstring(start),
            b'[' | b'#' | b'<' | b'{' => {
                if depth >= self.limits.max_depth {
                    return Err(SyrupError::Limit {
                        what: "nesting depth",
                        limit: self.limits.max_depth,
                        offset: start,
                    });
                }
                self.pos += 1;
                match b {
                    b'[' => Ok(Value::List(self.items(b']', depth, start, false)?)),
                    b'#' => Ok(Value::Set(self.items(b'$', depth, start, true)?)),
                    b'<' => {
                        if self.peek()? == b'>' {
                            return Err(SyrupError::NonCanonical {
                                offset: start,
                                what: "record without a label",
                            });
                        }
                        let label = self.value(depth + 1)?;
                        let args = self.items(b'>', depth, start, false)?;
                        Ok(Value::Record(Box::new(label), args))
                    }
                    _ => self.dict(depth, start),
                }
            }
            other => Err(self.unexpected(other)),
        }
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], SyrupError> {
        let from = self.pos + 1;
        let bytes = self
            .input
            .get(from..from + N)
            .ok_or(SyrupError::Incomplete)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.pos = from + N;
        Ok(out)
    }

    fn number_or_netstring(&mut self, start: usize) -> Result<Value, SyrupError> {
        let mut end = start;
        loop {
            let b = *self.input.get(end).ok_or(SyrupError::Incomplete)?;
            if b.is_ascii_digit() {
                end += 1;
                if end - start > MAX_INT_DIGITS {
                    return Err(SyrupError::Limit {
                        what: "integer or length digits",
                        limit: MAX_INT_DIGITS,
                        offset: start,
                    });
                }
                continue;
            }
            break;
        }
        let digits = &self.input[start..end];
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(SyrupError::NonCanonical {
                offset: start,
                what: "leading zero",
            });
        }
        // Only ASCII digits, at most 39 of them: fits a u128 unless it overflows.
        let n = digits
            .iter()
            .try_fold(0u128, |acc, d| {
                acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
            })
            .ok_or(SyrupError::Limit {
                what: "integer",
                limit: MAX_INT_DIGITS,
                offset: start,
            })?;
        let tag = self.input[end];
        self.pos = end + 1;
        match tag {
            b'+' => i128::try_from(n)
                .map(Value::Int)
                .map_err(|_| SyrupError::Limit {
                    what: "integer (beyond i128)",
                    limit: MAX_INT_DIGITS,
                    offset: start,
                }),
            b'-' => {
                if n == 0 {
                    return Err(SyrupError::NonCanonical {
                        offset: start,
                        what: "negative zero",
                    });
                }
                0i128
                    .checked_sub_unsigned(n)
                    .map(Value::Int)
                    .ok_or(SyrupError::Limit {
                        what: "integer (beyond i128)",
                        limit: MAX_INT_DIGITS,
                        offset: start,
                    })
            }
            b':' | b'"' | b'\'' => {
                let len = usize::try_from(n).unwrap_or(usize::MAX);
                if len > self.limits.max_len {
                    return Err(SyrupError::Limit {
                        what: "byte string length",
                        limit: self.limits.max_len,
                        offset: start,
                    });
                }
                let from = self.pos;
                let bytes = self
                    .input
                    .get(from..from.saturating_add(len))
                    .ok_or(SyrupError::Incomplete)?;
                self.pos = from + len;
                match tag {
                    b':' => Ok(Value::Bytes(bytes.to_vec())),
                    _ => {
                        let s = std::str::from_utf8(bytes)
                            .map_err(|_| SyrupError::Utf8 { offset: start })?
                            .to_owned();
                        Ok(if tag == b'"' {
                            Value::String(s)
                        } else {
                            Value::Symbol(s)
                        })
                    }
                }
            }
            other => {
                self.pos = end;
                Err(self.unexpected(other))
            }
        }
    }

    fn count_check(&self, count: usize, start: usize) -> Result<(), SyrupError> {
        if count >= self.limits.max_count {
            return Err(SyrupError::Limit {
                what: "items in one container",
                limit: self.limits.max_count,
                offset: start,
            });
        }
        Ok(())
    }

    fn items(
        &mut self,
        close: u8,
        depth: usize,
        start: usize,
        sorted: bool,
    ) -> Result<Vec<Value>, SyrupError> {
        let mut items = Vec::new();
        let mut prev: Option<(usize, usize)> = None;
        loop {
            if self.peek()? == close {
                self.pos += 1;
                return Ok(items);
            }
            self.count_check(items.len(), start)?;
            let item_start = self.pos;
            let item = self.value(depth + 1)?;
            if sorted {
                let this = (item_start, self.pos);
                if let Some(p) = prev
                    && self.input[p.0..p.1] >= self.input[this.0..this.1]
                {
                    return Err(SyrupError::NonCanonical {
                        offset: item_start,
                        what: "set items not in strictly increasing order",
                    });
                }
                prev = Some(this);
            }
            items.push(item);
        }
    }

    fn dict(&mut self, depth: usize, start: usize) -> Result<Value, SyrupError> {
        let mut pairs = Vec::new();
        let mut prev: Option<(usize, usize)> = None;
        loop {
            if self.peek()? == b'}' {
                self.pos += 1;
                return Ok(Value::Dict(pairs));
            }
            self.count_check(pairs.len(), start)?;
            let key_start = self.pos;
            let key = self.value(depth + 1)?;
            let this = (key_start, self.pos);
            if let Some(p) = prev
                && self.input[p.0..p.1] >= self.input[this.0..this.1]
            {
                return Err(SyrupError::NonCanonical {
                    offset: key_start,
                    what: "dictionary keys not in strictly increasing order",
                });
            }
            prev = Some(this);
            let val = self.value(depth + 1)?;
            pairs.push((key, val));
        }
    }
}
