//! OCapN locators: a peer (`<ocapn-peer transport designator hints>`) and a sturdyref
//! (`<ocapn-sturdyref peer swiss>`), in their Syrup forms and as `ocapn://` URIs.
//!
//! Two peer locators name the same peer when transport and designator match; hints only
//! say how to reach it. A locator read off the wire keeps its hints exactly as written, so
//! it re-encodes byte for byte (handoff certificates compare locators that way).

use data_encoding::BASE64URL_NOPAD;
use thiserror::Error;

use crate::syrup::Value;

/// The transport name of the plain-TCP netlayer the public conformance suite uses.
pub const TCP_TESTING_ONLY: &str = "tcp-testing-only";

/// A bad `ocapn://` URI or locator record.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LocatorError {
    /// The text is not an `ocapn://designator.transport[/s/swiss][?hints]` URI.
    #[error(
        "not an OCapN URI ({why}): {uri:?}; expected ocapn://<designator>.<transport>[/s/<swiss>][?key=value&...]"
    )]
    BadUri {
        /// The text given.
        uri: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The record is not an `<ocapn-peer ...>` or `<ocapn-sturdyref ...>`.
    #[error("not an OCapN locator record: {0}")]
    BadRecord(String),
}

/// Where a peer is: which netlayer, which node on it, and hints for reaching it.
#[derive(Clone, Debug)]
pub struct PeerLocator {
    /// The netlayer's name, e.g. `tcp-testing-only`.
    pub transport: String,
    /// The node's name on that netlayer (for `tcp-tls`, the certificate's hash).
    pub designator: String,
    hints: Vec<(Value, Value)>,
    hints_false: bool,
}

impl PartialEq for PeerLocator {
    fn eq(&self, other: &PeerLocator) -> bool {
        self.transport == other.transport && self.designator == other.designator
    }
}

impl Eq for PeerLocator {}

impl std::hash::Hash for PeerLocator {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.transport.hash(state);
        self.designator.hash(state);
    }
}

impl PeerLocator {
    /// A locator without hints.
    pub fn new(transport: impl Into<String>, designator: impl Into<String>) -> PeerLocator {
        PeerLocator {
            transport: transport.into(),
            designator: designator.into(),
            hints: Vec::new(),
            hints_false: false,
        }
    }

    /// Adds a hint (written with a string key, as Goblins 0.18, the current spec and the
    /// suite do; symbol keys are read too).
    pub fn with_hint(mut self, key: &str, value: impl Into<String>) -> PeerLocator {
        self.hints
            .push((Value::from(key), Value::String(value.into())));
        self
    }

    /// The hint named `key` (whether its key was written as a string or a symbol).
    pub fn hint(&self, key: &str) -> Option<&str> {
        self.hints.iter().find_map(|(k, v)| {
            let name = match k {
                Value::Symbol(s) | Value::String(s) => s.as_str(),
                _ => return None,
            };
            (name == key).then(|| v.as_str()).flatten()
        })
    }

    /// The record `<ocapn-peer transport designator hints>`.
    pub fn to_value(&self) -> Value {
        let hints = if self.hints.is_empty() && self.hints_false {
            Value::Bool(false)
        } else {
            Value::Dict(self.hints.clone())
        };
        Value::record(
            "ocapn-peer",
            vec![
                Value::symbol(&self.transport),
                Value::String(self.designator.clone()),
                hints,
            ],
        )
    }

    /// Reads `<ocapn-peer transport designator hints>`.
    pub fn from_value(v: &Value) -> Result<PeerLocator, LocatorError> {
        let bad = |why: &str| LocatorError::BadRecord(format!("{why} in {v:?}"));
        let (label, args) = v.as_record().ok_or_else(|| bad("not a record"))?;
        if label != "ocapn-peer" {
            return Err(bad("label is not ocapn-peer"));
        }
        let [transport, designator, hints] = args else {
            return Err(bad("ocapn-peer takes 3 fields"));
        };
        let transport = transport
            .as_symbol()
            .ok_or_else(|| bad("transport is not a symbol"))?;
        let designator = match designator {
            Value::String(s) | Value::Symbol(s) => s.clone(),
            Value::Bytes(b) => {
                String::from_utf8(b.clone()).map_err(|_| bad("designator is not text"))?
            }
            _ => return Err(bad("designator is not a string")),
        };
        let (hints, hints_false) = match hints {
            Value::Dict(d) => (d.clone(), false),
            Value::Bool(false) => (Vec::new(), true),
            _ => return Err(bad("hints are neither a dictionary nor false")),
        };
        Ok(PeerLocator {
            transport: transport.to_owned(),
            designator,
            hints,
            hints_false,
        })
    }

    /// The URI `ocapn://designator.transport?hint=value&...`.
    pub fn to_uri(&self) -> String {
        format!(
            "ocapn://{}.{}{}",
            self.designator,
            self.transport,
            self.query()
        )
    }

    fn query(&self) -> String {
        let mut parts = Vec::new();
        let mut hints: Vec<(String, String)> = self
            .hints
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (Value::Symbol(k) | Value::String(k), Value::String(v)) => {
                    Some((k.clone(), v.clone()))
                }
                _ => None,
            })
            .collect();
        hints.sort();
        for (k, v) in hints {
            parts.push(format!("{}={}", pct(&k), pct(&v)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    /// Parses a peer URI (a sturdyref URI is refused: use [`Sturdyref::parse`]).
    ///
    /// ```
    /// use gobs_ocapn_proto::locator::PeerLocator;
    /// let p = PeerLocator::parse("ocapn://abc.tcp-testing-only?host=127.0.0.1&port=22045").unwrap();
    /// assert_eq!((p.transport.as_str(), p.designator.as_str()), ("tcp-testing-only", "abc"));
    /// assert_eq!(p.hint("port"), Some("22045"));
    /// assert_eq!(p.to_uri(), "ocapn://abc.tcp-testing-only?host=127.0.0.1&port=22045");
    /// ```
    pub fn parse(uri: &str) -> Result<PeerLocator, LocatorError> {
        let (peer, path) = parse_uri(uri)?;
        if path.is_some() {
            return Err(LocatorError::BadUri {
                uri: uri.into(),
                why: "a peer URI has no path",
            });
        }
        Ok(peer)
    }
}

/// A persistent reference: a peer and the secret swiss number of an object on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sturdyref {
    /// The node that holds the object.
    pub peer: PeerLocator,
    /// The secret naming the object there.
    pub swiss: Vec<u8>,
}

impl Sturdyref {
    /// The record `<ocapn-sturdyref peer swiss>` (swiss as a byte string).
    pub fn to_value(&self) -> Value {
        Value::record(
            "ocapn-sturdyref",
            vec![self.peer.to_value(), Value::Bytes(self.swiss.clone())],
        )
    }

    /// Reads `<ocapn-sturdyref peer swiss>` (swiss as bytes or a string).
    pub fn from_value(v: &Value) -> Result<Sturdyref, LocatorError> {
        let bad = |why: &str| LocatorError::BadRecord(format!("{why} in {v:?}"));
        let (label, args) = v.as_record().ok_or_else(|| bad("not a record"))?;
        if label != "ocapn-sturdyref" {
            return Err(bad("label is not ocapn-sturdyref"));
        }
        let [peer, swiss] = args else {
            return Err(bad("ocapn-sturdyref takes 2 fields"));
        };
        let swiss = match swiss {
            Value::Bytes(b) => b.clone(),
            Value::String(s) => s.clone().into_bytes(),
            _ => return Err(bad("swiss number is neither bytes nor a string")),
        };
        Ok(Sturdyref {
            peer: PeerLocator::from_value(peer)?,
            swiss,
        })
    }

    /// The URI `ocapn://designator.transport/s/<base64url swiss>?hints`.
    pub fn to_uri(&self) -> String {
        format!(
            "ocapn://{}.{}/s/{}{}",
            self.peer.designator,
            self.peer.transport,
            BASE64URL_NOPAD.encode(&self.swiss),
            self.peer.query()
        )
    }

    /// Parses a sturdyref URI.
    ///
    /// ```
    /// use gobs_ocapn_proto::locator::Sturdyref;
    /// let s = Sturdyref::parse("ocapn://abc.tcp-tls/s/c2VjcmV0?host=h&port=1").unwrap();
    /// assert_eq!(s.swiss, b"secret");
    /// assert_eq!(s.to_uri(), "ocapn://abc.tcp-tls/s/c2VjcmV0?host=h&port=1");
    /// ```
    pub fn parse(uri: &str) -> Result<Sturdyref, LocatorError> {
        let (peer, path) = parse_uri(uri)?;
        let bad = |why| LocatorError::BadUri {
            uri: uri.into(),
            why,
        };
        let path = path.ok_or_else(|| bad("a sturdyref URI has the path /s/<swiss>"))?;
        let swiss = path
            .strip_prefix("/s/")
            .ok_or_else(|| bad("a sturdyref URI has the path /s/<swiss>"))?;
        let swiss = BASE64URL_NOPAD
            .decode(swiss.trim_end_matches('=').as_bytes())
            .map_err(|_| bad("the swiss number is not base64url"))?;
        Ok(Sturdyref { peer, swiss })
    }
}

fn parse_uri(uri: &str) -> Result<(PeerLocator, Option<String>), LocatorError> {
    let bad = |why| LocatorError::BadUri {
        uri: uri.into(),
        why,
    };
    let rest = uri
        .strip_prefix("ocapn://")
        .ok_or_else(|| bad("it does not start with ocapn://"))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(before_query[i..].to_owned())),
        None => (before_query, None),
    };
    let (designator, transport) = authority
        .rsplit_once('.')
        .ok_or_else(|| bad("the host is not <designator>.<transport>"))?;
    if designator.is_empty() || transport.is_empty() {
        return Err(bad("the host is not <designator>.<transport>"));
    }
    let mut peer = PeerLocator::new(transport, designator);
    if let Some(q) = query {
        for part in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad("a hint is not key=value"))?;
            let k = unpct(k).ok_or_else(|| bad("bad %-escape in a hint"))?;
            let v = unpct(v).ok_or_else(|| bad("bad %-escape in a hint"))?;
            peer = peer.with_hint(&k, v);
        }
    }
    Ok((peer, path))
}

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unpct(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
