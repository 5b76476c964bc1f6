//! The Syrup data model: one [`Value`] for every kind of datum Syrup can carry.
//!
//! Strings, symbols and byte strings are three distinct variants (they are distinct on the
//! wire), floats keep their exact bits, and dictionaries and sets are kept as written; the
//! encoder sorts them by encoded bytes, so any `Value` encodes canonically.

use std::fmt;

/// One Syrup datum.
///
/// ```
/// use gobs_ocapn_proto::syrup::{self, Value};
/// let v = Value::record("op:abort", vec![Value::from("bye")]);
/// assert_eq!(syrup::encode(&v), b"<8'op:abort3\"bye>");
/// assert_eq!(syrup::decode(b"<8'op:abort3\"bye>").unwrap(), v);
/// ```
#[derive(Clone)]
pub enum Value {
    /// `t` or `f`.
    Bool(bool),
    /// An integer, `12+` or `12-`. Syrup integers are unbounded; gobs accepts those that fit
    /// an `i128` and refuses longer ones with an error.
    Int(i128),
    /// A single-precision float, `F` and 4 big-endian bytes.
    F32(f32),
    /// A double-precision float, `D` and 8 big-endian bytes.
    F64(f64),
    /// A byte string, `3:abc`.
    Bytes(Vec<u8>),
    /// A UTF-8 string, `3"abc`.
    String(String),
    /// A symbol, `3'abc`.
    Symbol(String),
    /// A list, `[...]`.
    List(Vec<Value>),
    /// A dictionary, `{k v ...}`; encoded sorted by the encoded bytes of the keys.
    Dict(Vec<(Value, Value)>),
    /// A set, `#...$`; encoded sorted by the encoded bytes of the items.
    Set(Vec<Value>),
    /// A record, `<label args...>`.
    Record(Box<Value>, Vec<Value>),
}

impl Value {
    /// A symbol.
    pub fn symbol(name: impl Into<String>) -> Value {
        Value::Symbol(name.into())
    }

    /// A record whose label is the symbol `label`.
    pub fn record(label: &str, args: Vec<Value>) -> Value {
        Value::Record(Box::new(Value::symbol(label)), args)
    }

    /// The symbol's name, if this is a symbol.
    pub fn as_symbol(&self) -> Option<&str> {
        match self {
            Value::Symbol(s) => Some(s),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is an integer.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The label's symbol name and the arguments, if this is a record labelled by a symbol.
    pub fn as_record(&self) -> Option<(&str, &[Value])> {
        match self {
            Value::Record(label, args) => label.as_symbol().map(|l| (l, args.as_slice())),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::F32(_) => "single float",
            Value::F64(_) => "double float",
            Value::Bytes(_) => "byte string",
            Value::String(_) => "string",
            Value::Symbol(_) => "symbol",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
            Value::Set(_) => "set",
            Value::Record(..) => "record",
        }
    }
}

/// Two values are equal when their canonical encodings are equal (so floats compare by
/// bits, and dictionaries and sets compare regardless of the order they were built in).
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        super::encode(self) == super::encode(other)
    }
}

impl Eq for Value {}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::F32(x) => write!(f, "{x}f32"),
            Value::F64(x) => write!(f, "{x}f64"),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "b{s:?}"),
                Err(_) => write!(f, "b{b:x?}"),
            },
            Value::String(s) => write!(f, "{s:?}"),
            Value::Symbol(s) => write!(f, "'{s}"),
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Set(s) => {
                write!(f, "#")?;
                f.debug_set().entries(s).finish()
            }
            Value::Record(label, args) => {
                write!(f, "<{label:?}")?;
                for a in args {
                    write!(f, " {a:?}")?;
                }
                write!(f, ">")
            }
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                Value::Int(i128::from(i))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, u64);
