//! Passable values: Syrup data with references in it.
//!
//! A [`Term`] is what an object receives as arguments and gives back as a result: plain
//! data, plus [`CapRef`]s, either to a local object (an [`ObjId`] the host chose) or to an
//! object imported from a peer ([`RemoteRef`]). The session turns descriptors on the wire
//! (`desc:export`, `desc:import-object`, …) into refs and back.

use std::sync::{Arc, Mutex};

use crate::syrup::Value;

/// Names a local object or promise in the host's own table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjId(pub u64);

/// A reference to a local object, and whether it is a promise (it is exported as
/// `desc:import-promise` then).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalRef {
    /// The object.
    pub id: ObjId,
    /// Whether it is a promise.
    pub promise: bool,
}

/// Names one connection (and so one session) of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Imports whose last [`RemoteRef`] was dropped, waiting to be told to the exporter.
pub(crate) type DropQueue = Arc<Mutex<Vec<(ConnId, u64)>>>;

/// Where dropped imports are recorded. Each session has its own unless given a shared one
/// ([`super::Session::with_drop_sink`]), which lets a host with many sessions find the few
/// that have garbage without asking every one.
#[derive(Clone, Debug, Default)]
pub struct DropSink(pub(crate) DropQueue);

impl DropSink {
    /// An empty sink.
    pub fn new() -> DropSink {
        DropSink::default()
    }

    /// Swaps what was recorded into `into` (which should be empty), leaving the sink
    /// `into`'s room: a host draining it on every message allocates nothing for it.
    pub(crate) fn drain_into(&self, into: &mut Vec<(ConnId, u64)>) {
        if let Ok(mut q) = self.0.lock() {
            std::mem::swap(&mut *q, into);
        }
    }

    /// Takes what was recorded: (connection, import position) pairs.
    pub fn drain(&self) -> Vec<(ConnId, u64)> {
        match self.0.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => Vec::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct ImportInner {
    pub(crate) conn: ConnId,
    pub(crate) position: u64,
    pub(crate) promise: bool,
    pub(crate) drops: DropQueue,
}

impl Drop for ImportInner {
    fn drop(&mut self) {
        if let Ok(mut q) = self.drops.lock() {
            q.push((self.conn, self.position));
        }
    }
}

/// A reference to an object a peer exported to us. Clones share one import; when the last
/// clone is dropped, the session tells the exporter (`op:gc-export`).
#[derive(Clone, Debug)]
pub struct RemoteRef(pub(crate) Arc<ImportInner>);

impl RemoteRef {
    /// The session it was imported on.
    pub fn conn(&self) -> ConnId {
        self.0.conn
    }

    /// Its position in the exporter's table.
    pub fn position(&self) -> u64 {
        self.0.position
    }

    /// Whether the exporter said it is a promise.
    pub fn is_promise(&self) -> bool {
        self.0.promise
    }
}

impl PartialEq for RemoteRef {
    fn eq(&self, other: &RemoteRef) -> bool {
        self.conn() == other.conn() && self.position() == other.position()
    }
}

/// A reference inside a [`Term`].
#[derive(Clone, Debug, PartialEq)]
pub enum CapRef {
    /// To a local object or promise.
    Local(LocalRef),
    /// To an object on a peer.
    Remote(RemoteRef),
}

/// A passable value.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// A scalar: boolean, number, string, symbol or bytes (never a container).
    Data(Value),
    /// A list.
    List(Vec<Term>),
    /// A dictionary.
    Dict(Vec<(Term, Term)>),
    /// A set.
    Set(Vec<Term>),
    /// A record.
    Record(Box<Term>, Vec<Term>),
    /// A reference.
    Ref(CapRef),
    /// A third-party reference as received: a signed `desc:handoff-give` envelope that the
    /// receiver redeems at the exporter.
    Handoff(Value),
}

impl Term {
    /// A symbol.
    pub fn sym(s: &str) -> Term {
        Term::Data(Value::symbol(s))
    }

    /// A string.
    pub fn str(s: &str) -> Term {
        Term::Data(Value::from(s))
    }

    /// A local reference.
    pub fn local(r: LocalRef) -> Term {
        Term::Ref(CapRef::Local(r))
    }

    /// Plain data (no references) as a Term.
    pub fn from_value(v: Value) -> Term {
        match v {
            Value::List(l) => Term::List(l.into_iter().map(Term::from_value).collect()),
            Value::Dict(d) => Term::Dict(
                d.into_iter()
                    .map(|(k, v)| (Term::from_value(k), Term::from_value(v)))
                    .collect(),
            ),
            Value::Set(s) => Term::Set(s.into_iter().map(Term::from_value).collect()),
            Value::Record(l, a) => Term::Record(
                Box::new(Term::from_value(*l)),
                a.into_iter().map(Term::from_value).collect(),
            ),
            scalar => Term::Data(scalar),
        }
    }

    /// This term as plain data, if it holds no references.
    pub fn to_value(&self) -> Option<Value> {
        Some(match self {
            Term::Data(v) => v.clone(),
            Term::List(l) => Value::List(l.iter().map(Term::to_value).collect::<Option<_>>()?),
            Term::Dict(d) => Value::Dict(
                d.iter()
                    .map(|(k, v)| Some((k.to_value()?, v.to_value()?)))
                    .collect::<Option<_>>()?,
            ),
            Term::Set(s) => Value::Set(s.iter().map(Term::to_value).collect::<Option<_>>()?),
            Term::Record(l, a) => Value::Record(
                Box::new(l.to_value()?),
                a.iter().map(Term::to_value).collect::<Option<_>>()?,
            ),
            Term::Ref(_) => return None,
            Term::Handoff(v) => v.clone(),
        })
    }

    /// The symbol's name, if this is a symbol.
    pub fn as_symbol(&self) -> Option<&str> {
        match self {
            Term::Data(v) => v.as_symbol(),
            _ => None,
        }
    }

    /// The reference, if this is one.
    pub fn as_ref(&self) -> Option<&CapRef> {
        match self {
            Term::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// Calls `f` on every reference in the term.
    pub fn for_each_ref(&self, f: &mut dyn FnMut(&CapRef)) {
        match self {
            Term::Ref(r) => f(r),
            Term::List(l) | Term::Set(l) => l.iter().for_each(|t| t.for_each_ref(f)),
            Term::Dict(d) => d.iter().for_each(|(k, v)| {
                k.for_each_ref(f);
                v.for_each_ref(f);
            }),
            Term::Record(l, a) => {
                l.for_each_ref(f);
                a.iter().for_each(|t| t.for_each_ref(f));
            }
            Term::Data(_) | Term::Handoff(_) => {}
        }
    }
}

impl From<Value> for Term {
    fn from(v: Value) -> Term {
        Term::from_value(v)
    }
}
