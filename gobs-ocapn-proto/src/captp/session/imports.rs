//! The peer's objects this session holds: references made from the peer's descriptors,
//! counted as they arrive, and released with `op:gc-export` once the last one is dropped.

use std::sync::{Arc, Weak};

use super::{ImportEntry, Session};
use crate::captp::ops::{self, Target};
use crate::captp::term::ImportInner;
use crate::captp::{CapRef, CaptpError, DropSink, RemoteRef, Term, records};
use crate::syrup::{self, Value};

impl Session {
    /// A reference to the peer's object at `pos`. Every arrival counts: the count goes
    /// back to the peer in `op:gc-export` when the last reference is dropped.
    pub(super) fn import(&mut self, pos: u64, promise: bool) -> RemoteRef {
        let entry = self.imports.entry(pos).or_insert(ImportEntry {
            wire_count: 0,
            handle: Weak::new(),
        });
        entry.wire_count += 1;
        if let Some(inner) = entry.handle.upgrade() {
            return RemoteRef(inner);
        }
        let inner = Arc::new(ImportInner {
            conn: self.conn,
            position: pos,
            promise,
            drops: self.drops.0.clone(),
        });
        entry.handle = Arc::downgrade(&inner);
        RemoteRef(inner)
    }

    pub(super) fn import_terms(&mut self, args: Vec<Value>) -> Result<Vec<Term>, CaptpError> {
        args.into_iter().map(|a| self.import_term(a)).collect()
    }

    pub(super) fn import_term(&mut self, v: Value) -> Result<Term, CaptpError> {
        Ok(match v {
            Value::Record(label, args) => {
                match (label.as_symbol(), args.as_slice()) {
                    (Some("desc:import-object"), [p]) => {
                        let p = ops::position(p, "desc:import-object position")?;
                        return Ok(Term::Ref(CapRef::Remote(self.import(p, false))));
                    }
                    (Some("desc:import-promise"), [p]) => {
                        let p = ops::position(p, "desc:import-promise position")?;
                        return Ok(Term::Ref(CapRef::Remote(self.import(p, true))));
                    }
                    (Some("desc:export"), [p]) => {
                        let p = ops::position(p, "desc:export position")?;
                        return Ok(Term::local(self.local_target(Target::Export(p))?));
                    }
                    (Some("desc:answer"), [p]) => {
                        let p = ops::position(p, "desc:answer position")?;
                        return Ok(Term::local(self.local_target(Target::Answer(p))?));
                    }
                    (Some("desc:sig-envelope"), [signed, _sig])
                        if signed.as_record().map(|r| r.0) == Some("desc:handoff-give") =>
                    {
                        return Ok(Term::Handoff(Value::Record(label, args)));
                    }
                    // A signed handoff-receive is a certificate for the bootstrap object's
                    // withdraw-gift: plain data, the give inside it included.
                    (Some("desc:sig-envelope"), [signed, _sig])
                        if signed.as_record().map(|r| r.0) == Some("desc:handoff-receive") =>
                    {
                        return Ok(Term::from_value(Value::Record(label, args)));
                    }
                    _ => {}
                }
                if let Some((label, fields)) = records::unwrap(&label, &args) {
                    return Ok(Term::Record(
                        Box::new(self.import_term(label)?),
                        self.import_terms(fields)?,
                    ));
                }
                let label = self.import_term(*label)?;
                let args = args
                    .into_iter()
                    .map(|a| self.import_term(a))
                    .collect::<Result<_, _>>()?;
                Term::Record(Box::new(label), args)
            }
            Value::List(l) => Term::List(
                l.into_iter()
                    .map(|a| self.import_term(a))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Dict(d) => Term::Dict(
                d.into_iter()
                    .map(|(k, v)| Ok((self.import_term(k)?, self.import_term(v)?)))
                    .collect::<Result<_, CaptpError>>()?,
            ),
            Value::Set(s) => Term::Set(
                s.into_iter()
                    .map(|a| self.import_term(a))
                    .collect::<Result<_, _>>()?,
            ),
            scalar => Term::Data(scalar),
        })
    }

    /// Records this session's dropped imports in `sink` instead of its own (call before the
    /// session imports anything); the host then drains the sink and hands each session its
    /// positions with [`Session::release_dropped`].
    pub fn with_drop_sink(mut self, sink: DropSink) -> Session {
        self.drops = sink;
        self
    }

    /// Tells the exporter about every import whose last [`RemoteRef`] was dropped since the
    /// last call (one `op:gc-export` carrying them all), for a session with its own drop
    /// sink. Returns how many were released.
    pub fn collect_garbage(&mut self) -> usize {
        let mine: Vec<u64> = self
            .drops
            .drain()
            .into_iter()
            .filter(|(c, _)| *c == self.conn)
            .map(|(_, p)| p)
            .collect();
        self.release_dropped(&mine)
    }

    /// Releases the imports at `dropped` whose last [`RemoteRef`] is gone (a position
    /// imported again since is kept) with one `op:gc-export`. Returns how many.
    pub fn release_dropped(&mut self, dropped: &[u64]) -> usize {
        self.release_dropped_of(dropped.iter().copied())
    }

    /// [`Session::release_dropped`] of positions as they come.
    pub(crate) fn release_dropped_of(
        &mut self,
        dropped: impl ExactSizeIterator<Item = u64>,
    ) -> usize {
        if dropped.len() == 0 || !self.is_open() {
            return 0;
        }
        // Every far call's resolver is one: `<op:gc-export [positions] [deltas]>` is
        // written straight to the output, without building its value.
        let mut released = Vec::with_capacity(dropped.len());
        for pos in dropped {
            let dead = self
                .imports
                .get(&pos)
                .is_some_and(|e| e.handle.strong_count() == 0);
            if dead && let Some(e) = self.imports.remove(&pos) {
                released.push((pos, e.wire_count));
            }
        }
        if !released.is_empty() {
            let label = ops::gc_export_label(self.labels);
            self.write_with(|out| {
                syrup::open_record(label, out);
                out.push(b'[');
                for &(pos, _) in &released {
                    syrup::encode_uint(pos, out);
                }
                out.extend_from_slice(b"][");
                for &(_, count) in &released {
                    syrup::encode_uint(count, out);
                }
                out.push(b']');
                syrup::close_record(out);
            });
        }
        released.len()
    }

    /// How many imports this session currently holds.
    pub fn import_count(&self) -> usize {
        self.imports.len()
    }
}
