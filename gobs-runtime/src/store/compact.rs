//! The compact snapshot body: how a log writes its whole graph in one frame, at a few
//! bytes of overhead per actor instead of a MessagePack map of portraits.
//!
//! A snapshot of a registry log holds one portrait per actor and one per map entry, most
//! of them small (a cell, a table's entry) and most in runs of one type. Written as a
//! MessagePack `Graph`, each costs a 9-byte key, its name, its version and a `bin` header:
//! about 16 bytes before its arguments, which for a table of cells is more than the cells
//! themselves. Here each actor costs its key's distance from the previous key (ids are
//! dense, so one byte), one header varint (its arguments' length and whether its type is
//! the previous actor's), its type only when it changes, then its arguments:
//!
//! ```text
//! body   := roots next_id count actor*count      (roots, next_id, count: MessagePack)
//! actor  := varint(id - previous id)             (the first: id - 0)
//!           varint(args_len << 1 | same_type)
//!           [name version]   unless same_type    (MessagePack: name a str, or a uint N
//!                                                 for a numbered name "\u{1}N")
//!           args                                 (args_len bytes)
//! ```
//!
//! Varints are LEB128 (7 bits a byte, low first). Deltas stay MessagePack `Delta`s: a
//! commit still appends only what it changed.

use std::io::{self, Write};

use crate::portrait::ActorId;

/// A LEB128 varint's length.
pub(crate) fn varint_len(mut x: u64) -> u64 {
    let mut n = 1;
    while x >= 0x80 {
        x >>= 7;
        n += 1;
    }
    n
}

/// Writes `x` as a LEB128 varint.
pub(crate) fn write_varint<W: Write>(w: &mut W, mut x: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    while x >= 0x80 {
        buf[n] = (x as u8) | 0x80;
        x >>= 7;
        n += 1;
    }
    buf[n] = x as u8;
    w.write_all(&buf[..=n])
}

/// Reads a LEB128 varint from the front of `input`.
pub(crate) fn read_varint(input: &mut &[u8]) -> Result<u64, String> {
    let mut x: u64 = 0;
    for (i, b) in input.iter().enumerate().take(10) {
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            break;
        }
        x |= bits << (7 * i);
        if b & 0x80 == 0 {
            *input = &input[i + 1..];
            return Ok(x);
        }
    }
    Err("a varint is cut short or longer than 64 bits".to_string())
}

/// The header varint of an actor whose arguments are `args_len` bytes.
pub(crate) fn header(args_len: usize, same_type: bool) -> u64 {
    (args_len as u64) << 1 | u64::from(same_type)
}

/// What [`link_len`] needs to know of one actor.
#[derive(Copy, Clone)]
pub(crate) struct Link<'a> {
    pub id: ActorId,
    pub ty: u32,
    pub ty_len: usize,
    pub args: &'a [u8],
}

/// Bytes `this` takes in a compact body when it follows `prev` (`None`: it comes first).
pub(crate) fn link_len(prev: Option<Link<'_>>, this: Link<'_>) -> u64 {
    let prev_id = prev.map_or(0, |p| p.id.0);
    let same = prev.is_some_and(|p| p.ty == this.ty);
    varint_len(this.id.0.wrapping_sub(prev_id))
        + varint_len(header(this.args.len(), same))
        + if same { 0 } else { this.ty_len as u64 }
        + this.args.len() as u64
}

/// One actor read back from a compact body, its slices borrowed from the body.
pub(crate) struct Read<'a> {
    pub id: ActorId,
    /// Its type's bytes (name and version), when they differ from the previous actor's.
    pub ty: Option<&'a [u8]>,
    pub args: &'a [u8],
}

/// Reads the actors of a compact body, one at a time.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    prev: Option<ActorId>,
    left: u64,
}

/// The fields of a compact body before its actors.
pub(crate) struct Head<'a> {
    pub roots: Vec<ActorId>,
    pub next_id: u64,
    pub actors: Reader<'a>,
}

/// Reads a compact body's roots, next id and actor count; the actors follow.
pub(crate) fn read_head(mut input: &[u8]) -> Result<Head<'_>, String> {
    let bad = |what: &str, e: &dyn std::fmt::Display| format!("the snapshot's {what}: {e}");
    let n = rmp::decode::read_array_len(&mut input).map_err(|e| bad("roots", &e))?;
    let mut roots = Vec::with_capacity((n as usize).min(input.len()));
    for _ in 0..n {
        roots.push(ActorId(
            rmp::decode::read_int(&mut input).map_err(|e| bad("roots", &e))?,
        ));
    }
    let next_id = rmp::decode::read_int(&mut input).map_err(|e| bad("next id", &e))?;
    let left = rmp::decode::read_int(&mut input).map_err(|e| bad("actor count", &e))?;
    Ok(Head {
        roots,
        next_id,
        actors: Reader {
            input,
            prev: None,
            left,
        },
    })
}

impl<'a> Reader<'a> {
    /// How many actors are left to read.
    pub(crate) fn left(&self) -> u64 {
        self.left
    }

    /// The next actor, `None` after the last; an error for a damaged body.
    pub(crate) fn next_actor(&mut self) -> Result<Option<Read<'a>>, String> {
        if self.left == 0 {
            if !self.input.is_empty() {
                return Err(format!(
                    "{} bytes follow the snapshot's last actor",
                    self.input.len()
                ));
            }
            return Ok(None);
        }
        let delta = read_varint(&mut self.input)?;
        let id = match self.prev {
            None => ActorId(delta),
            Some(p) if delta > 0 => ActorId(p.0.checked_add(delta).ok_or("an actor id overflows")?),
            Some(p) => return Err(format!("actor ids are not increasing after {p}")),
        };
        let head = read_varint(&mut self.input)?;
        let same = head & 1 == 1;
        let args_len = usize::try_from(head >> 1).unwrap_or(usize::MAX);
        let ty = if same {
            if self.prev.is_none() {
                return Err("the snapshot's first actor has no type".to_string());
            }
            None
        } else {
            let len = type_len(self.input)?;
            let (ty, rest) = self.input.split_at(len);
            self.input = rest;
            Some(ty)
        };
        if args_len > self.input.len() {
            return Err(format!(
                "actor {id} announces {args_len} bytes of arguments, {} remain",
                self.input.len()
            ));
        }
        let (args, rest) = self.input.split_at(args_len);
        self.input = rest;
        self.prev = Some(id);
        self.left -= 1;
        Ok(Some(Read { id, ty, args }))
    }
}

/// Marks a portrait name written by number (the registry log's name table).
const NUMBERED: char = '\u{1}';

/// Encodes a portrait's type: its name (a numbered name as its number) and version.
pub(crate) fn encode_type(name: &str, version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 6);
    match numbered(name) {
        Some(n) => {
            let _ = rmp::encode::write_uint(&mut out, n);
        }
        None => {
            let _ = rmp::encode::write_str(&mut out, name);
        }
    }
    let _ = rmp::encode::write_uint(&mut out, u64::from(version));
    out
}

/// `Some(N)` when `name` is exactly `"\u{1}N"` as the name table writes it (so that
/// decoding gives the same string back).
fn numbered(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(NUMBERED)?;
    let n: u64 = digits.parse().ok()?;
    (n.to_string() == digits).then_some(n)
}

/// Decodes a type written by [`encode_type`].
pub(crate) fn decode_type(mut ty: &[u8]) -> Result<(String, u32), String> {
    let bad = |e: &dyn std::fmt::Display| format!("an actor's type does not decode: {e}");
    let name = match ty.first() {
        Some(0x00..=0x7f | 0xcc..=0xcf) => {
            let n: u64 = rmp::decode::read_int(&mut ty).map_err(|e| bad(&e))?;
            format!("{NUMBERED}{n}")
        }
        _ => {
            let len = rmp::decode::read_str_len(&mut ty).map_err(|e| bad(&e))? as usize;
            let s = ty.get(..len).ok_or_else(|| bad(&"its name is cut short"))?;
            let s = std::str::from_utf8(s).map_err(|e| bad(&e))?.to_string();
            ty = &ty[len..];
            s
        }
    };
    let version: u32 = rmp::decode::read_int(&mut ty).map_err(|e| bad(&e))?;
    if !ty.is_empty() {
        return Err(bad(&"bytes follow its version"));
    }
    Ok((name, version))
}

/// The length of the type at the front of `input`.
fn type_len(input: &[u8]) -> Result<usize, String> {
    let mut rest = input;
    let bad = |e: &dyn std::fmt::Display| format!("an actor's type does not decode: {e}");
    match rest.first() {
        Some(0x00..=0x7f | 0xcc..=0xcf) => {
            let _: u64 = rmp::decode::read_int(&mut rest).map_err(|e| bad(&e))?;
        }
        _ => {
            let len = rmp::decode::read_str_len(&mut rest).map_err(|e| bad(&e))? as usize;
            rest = rest
                .get(len..)
                .ok_or_else(|| bad(&"its name is cut short"))?;
        }
    }
    let _: u32 = rmp::decode::read_int(&mut rest).map_err(|e| bad(&e))?;
    Ok(input.len() - rest.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn varints_round_trip() {
        for x in [0, 1, 127, 128, 300, 1 << 40, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, x).unwrap();
            assert_eq!(out.len() as u64, varint_len(x));
            let mut input = &out[..];
            assert_eq!(read_varint(&mut input).unwrap(), x);
            assert!(input.is_empty());
        }
        assert!(read_varint(&mut &[0x80u8][..]).is_err());
        assert!(read_varint(&mut &[0xffu8; 11][..]).is_err());
    }

    #[test]
    fn types_round_trip_and_keep_odd_numbered_names() {
        for name in [
            "\u{1}7",
            "\u{1}07",
            "\u{1}",
            "gobs::Cell",
            "\u{1}99999999999",
        ] {
            let ty = encode_type(name, 3);
            assert_eq!(type_len(&ty).unwrap(), ty.len());
            assert_eq!(decode_type(&ty).unwrap(), (name.to_string(), 3), "{name:?}");
        }
        assert_eq!(encode_type("\u{1}7", 1).len(), 2);
    }
}
