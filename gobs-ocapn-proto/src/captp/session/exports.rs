//! This node's objects the peer holds: terms written as descriptors, exports counted as
//! they leave, and the answers kept for the peer's questions.

use super::{ExportEntry, Session};
use crate::captp::{CapRef, CaptpError, LocalRef, ObjId, RemoteRef, Term, records};
use crate::syrup::{self, Value};

/// How the host writes a reference that belongs to another session (a third-party
/// handoff): given the reference, the Syrup to put in its place.
pub type ThirdParty<'a> = &'a mut dyn FnMut(&RemoteRef) -> Result<Value, CaptpError>;

impl Session {
    /// The object exported at `pos`.
    pub(super) fn export_at(&self, pos: u64) -> Option<LocalRef> {
        self.exports.get(&pos).map(|e| e.obj)
    }

    /// The peer let go of `delta` of the references to export `pos` it was sent: the
    /// object, once the peer holds none.
    pub(super) fn release_export(
        &mut self,
        pos: u64,
        delta: u64,
    ) -> Result<Option<LocalRef>, CaptpError> {
        let entry = self
            .exports
            .get_mut(&pos)
            .ok_or(CaptpError::Position("op:gc-export position", pos))?;
        if delta > entry.count {
            return Err(CaptpError::Protocol(format!(
                "op:gc-export releases {delta} references to export {pos}, only {} were sent",
                entry.count
            )));
        }
        entry.count -= delta;
        if entry.count > 0 {
            return Ok(None);
        }
        let obj = entry.obj;
        self.exports.remove(&pos);
        self.export_of.remove(&obj.id);
        Ok(Some(obj))
    }

    pub(super) fn export(&mut self, obj: LocalRef) -> u64 {
        if obj.id == self.bootstrap.id {
            return 0;
        }
        let pos = match self.export_of.get(&obj.id) {
            Some(p) => *p,
            None => {
                let p = self.next_export;
                self.next_export += 1;
                self.export_of.insert(obj.id, p);
                self.exports.insert(p, ExportEntry { obj, count: 0 });
                p
            }
        };
        if let Some(e) = self.exports.get_mut(&pos) {
            e.count += 1;
        }
        pos
    }

    /// Writes `term` as Syrup for this session: local refs become exports, this session's
    /// imports become `desc:export`s, other sessions' refs go through `third_party`.
    pub fn export_term(
        &mut self,
        term: &Term,
        third_party: ThirdParty<'_>,
    ) -> Result<Value, CaptpError> {
        Ok(match term {
            Term::Data(v) => v.clone(),
            Term::Handoff(v) => v.clone(),
            Term::List(l) => Value::List(
                l.iter()
                    .map(|t| self.export_term(t, third_party))
                    .collect::<Result<_, _>>()?,
            ),
            Term::Set(l) => Value::Set(
                l.iter()
                    .map(|t| self.export_term(t, third_party))
                    .collect::<Result<_, _>>()?,
            ),
            Term::Dict(d) => Value::Dict(
                d.iter()
                    .map(|(k, v)| {
                        Ok((
                            self.export_term(k, third_party)?,
                            self.export_term(v, third_party)?,
                        ))
                    })
                    .collect::<Result<_, CaptpError>>()?,
            ),
            Term::Record(l, a) => {
                let label = self.export_term(l, third_party)?;
                let fields = a
                    .iter()
                    .map(|t| self.export_term(t, third_party))
                    .collect::<Result<_, _>>()?;
                if records::is_protocol_label(&label) {
                    Value::Record(Box::new(label), fields)
                } else {
                    records::wrap(label, fields)
                }
            }
            Term::Ref(CapRef::Local(r)) => {
                let pos = self.export(*r);
                let label = if r.promise {
                    "desc:import-promise"
                } else {
                    "desc:import-object"
                };
                Value::record(label, vec![pos.into()])
            }
            Term::Ref(CapRef::Remote(r)) if r.conn() == self.conn => {
                Value::record("desc:export", vec![r.position().into()])
            }
            Term::Ref(CapRef::Remote(r)) => third_party(r)?,
        })
    }

    /// Appends the bytes of [`Session::export_term`]'s value to `out`, building no value
    /// for the parts a far call has (data, lists, references to this node's objects or to
    /// the peer's); the others are built and encoded. On an error `out` holds part of
    /// the term: write to a buffer of its own.
    pub(super) fn export_term_into(
        &mut self,
        term: &Term,
        third_party: ThirdParty<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), CaptpError> {
        match term {
            Term::Data(v) => syrup::encode_into(v, out),
            Term::List(l) => {
                out.push(b'[');
                for t in l {
                    self.export_term_into(t, third_party, out)?;
                }
                out.push(b']');
            }
            Term::Ref(CapRef::Local(r)) => {
                let pos = self.export(*r);
                let label = if r.promise {
                    "desc:import-promise"
                } else {
                    "desc:import-object"
                };
                desc_into(label, pos, out);
            }
            Term::Ref(CapRef::Remote(r)) if r.conn() == self.conn => {
                desc_into("desc:export", r.position(), out);
            }
            other => syrup::encode_into(&self.export_term(other, third_party)?, out),
        }
        Ok(())
    }

    /// Whether this session currently exports `obj`.
    pub fn exports(&self, obj: ObjId) -> bool {
        self.export_of.contains_key(&obj)
    }

    /// The objects this session exports now and the promises it answers with: what the
    /// peer lets go of all at once when the session ends.
    pub fn held_by_peer(&self) -> (Vec<ObjId>, Vec<ObjId>) {
        (
            self.export_of.keys().copied().collect(),
            self.answers.values().map(|r| r.id).collect(),
        )
    }

    /// How many objects this session currently exports (bootstrap excluded).
    pub fn export_count(&self) -> usize {
        self.exports.len()
    }

    /// How many answers to the peer's questions this session keeps (until `op:gc-answers`).
    pub fn answer_count(&self) -> usize {
        self.answers.len()
    }

    /// Whether neither side holds anything of the other's: no exports (our questions'
    /// resolvers among them), no imports, no answers kept for the peer's questions.
    pub fn holds_nothing(&self) -> bool {
        self.exports.is_empty() && self.imports.is_empty() && self.answers.is_empty()
    }
}

/// `<label pos>`: a descriptor, as its value encodes.
fn desc_into(label: &str, pos: u64, out: &mut Vec<u8>) {
    syrup::open_record(label, out);
    syrup::encode_uint(pos, out);
    syrup::close_record(out);
}
