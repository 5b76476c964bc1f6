//! CapTP operations: from a decoded Syrup frame to a typed [`Op`], and the names both
//! dialects use on the wire.
//!
//! Parsing checks each op's shape (label, field count, field kinds); what the fields refer
//! to (positions, keys) is the session's business.

use super::{CaptpError, Labels};
use crate::syrup::Value;

/// What a `to-desc` names on the receiving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `desc:export N`: an object the receiver exported.
    Export(u64),
    /// `desc:answer N`: the answer to an earlier `op:deliver` with answer position N.
    Answer(u64),
}

/// One parsed CapTP operation.
#[derive(Clone, Debug)]
pub enum Op {
    /// `<op:start-session version pubkey location location-sig>`.
    StartSession {
        /// The peer's CapTP version.
        version: String,
        /// The peer's session key, Syrup form.
        pubkey: Value,
        /// The peer's locator, Syrup form.
        location: Value,
        /// Its signature over `<my-location location>`.
        location_sig: Value,
    },
    /// `<op:abort reason>`.
    Abort(String),
    /// `<op:deliver-only to args>`, or `<op:deliver to args false false>`.
    DeliverOnly {
        /// Recipient.
        to: Target,
        /// The arguments (descriptors not yet resolved).
        args: Vec<Value>,
    },
    /// `<op:deliver to args answer-pos resolve-me>`.
    Deliver {
        /// Recipient.
        to: Target,
        /// Arguments.
        args: Vec<Value>,
        /// Where the answer promise goes, for pipelining.
        answer_pos: Option<u64>,
        /// Who to tell the result (a `desc:import-object`/`-promise`), if anyone.
        resolve_me: Option<Value>,
    },
    /// `<op:listen to resolve-me wants-partial>`.
    Listen {
        /// The promise listened to.
        to: Target,
        /// Who to tell.
        resolve_me: Value,
        /// Whether a resolution to another promise is told too.
        wants_partial: bool,
    },
    /// `<op:get to field new-answer-pos>`, `<op:index to index new-answer-pos>`,
    /// `<op:untag to tag new-answer-pos>`: a promise at `answer_pos` for one part of what
    /// `to` settles to.
    Select {
        /// The promise (or object) whose settled value is taken apart.
        to: Target,
        /// Which part.
        selector: Selector,
        /// Where the new answer promise goes.
        answer_pos: u64,
    },
    /// `<op:gc-export(s) positions deltas>`.
    GcExports(Vec<(u64, u64)>),
    /// `<op:gc-answer(s) positions>`.
    GcAnswers(Vec<u64>),
}

/// What `op:get`, `op:index` and `op:untag` take out of a settled value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// A Struct's field (`op:get`): a Syrup dictionary's value at that string key.
    Field(String),
    /// A List's element (`op:index`), from 0.
    Index(u64),
    /// A Tagged value's payload (`op:untag`), asserting its tag: a Syrup record
    /// `<tag value>` with exactly one field (the spec names no wire form for Tagged; this
    /// is the one Syrup has).
    Untag(String),
}

impl Selector {
    /// The part of `v` this selects, or why there is none.
    pub fn select<'a>(&self, v: &'a super::Term) -> Result<&'a super::Term, String> {
        use super::Term;
        match (self, v) {
            (Selector::Field(f), Term::Dict(pairs)) => pairs
                .iter()
                .find(|(k, _)| matches!(k, Term::Data(Value::String(s)) if s == f))
                .map(|(_, v)| v)
                .ok_or_else(|| format!("op:get: the struct has no field {f:?}")),
            (Selector::Field(_), other) => Err(format!("op:get: {} is not a struct", kind(other))),
            (Selector::Index(i), Term::List(l)) => l.get(*i as usize).ok_or_else(|| {
                format!(
                    "op:index: index {i} is out of bounds of a list of {}",
                    l.len()
                )
            }),
            (Selector::Index(_), other) => Err(format!("op:index: {} is not a list", kind(other))),
            (Selector::Untag(tag), Term::Record(label, fields)) => {
                let found = match &**label {
                    Term::Data(Value::String(s) | Value::Symbol(s)) => Some(s.as_str()),
                    _ => None,
                };
                match (found, fields.as_slice()) {
                    (Some(t), [value]) if t == tag => Ok(value),
                    (Some(t), [_]) => Err(format!("op:untag: the tag is {t:?}, not {tag:?}")),
                    _ => Err("op:untag: the record is not a tagged value".into()),
                }
            }
            (Selector::Untag(_), other) => {
                Err(format!("op:untag: {} is not a tagged value", kind(other)))
            }
        }
    }
}

fn kind(t: &super::Term) -> &'static str {
    use super::Term;
    match t {
        Term::Data(v) => v.kind(),
        Term::List(_) => "a list",
        Term::Dict(_) => "a dictionary",
        Term::Set(_) => "a set",
        Term::Record(..) => "a record",
        Term::Ref(_) | Term::Handoff(_) => "a reference",
    }
}

fn malformed(what: impl Into<String>) -> CaptpError {
    CaptpError::Malformed(what.into())
}

/// A non-negative position.
pub(crate) fn position(v: &Value, what: &str) -> Result<u64, CaptpError> {
    v.as_int()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| malformed(format!("{what} is not a non-negative integer: {v:?}")))
}

pub(crate) fn target(v: &Value) -> Result<Target, CaptpError> {
    match v.as_record() {
        Some(("desc:export", [p])) => Ok(Target::Export(position(p, "desc:export position")?)),
        Some(("desc:answer", [p])) => Ok(Target::Answer(position(p, "desc:answer position")?)),
        _ => Err(malformed(format!(
            "recipient is neither desc:export nor desc:answer: {v:?}"
        ))),
    }
}

fn list<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], CaptpError> {
    v.as_list()
        .ok_or_else(|| malformed(format!("{what} is not a list: {v:?}")))
}

impl Op {
    /// Parses one frame it owns: a delivery's arguments are moved into the op, not copied
    /// (a message carrying a run's chunk of 64 KiB copied it once more on every hop).
    pub fn parse_owned(mut frame: Value) -> Result<Op, CaptpError> {
        let moved = match &mut frame {
            Value::Record(label, args)
                if matches!(label.as_symbol(), Some("op:deliver" | "op:deliver-only")) =>
            {
                match args.get_mut(1) {
                    Some(Value::List(list)) => Some(std::mem::take(list)),
                    _ => None,
                }
            }
            _ => None,
        };
        let mut op = Op::parse(&frame)?;
        if let (Some(moved), Op::Deliver { args, .. } | Op::DeliverOnly { args, .. }) =
            (moved, &mut op)
        {
            *args = moved;
        }
        Ok(op)
    }

    /// Parses one frame.
    pub fn parse(frame: &Value) -> Result<Op, CaptpError> {
        let (label, args) = frame.as_record().ok_or_else(|| {
            malformed(format!(
                "a CapTP message is a record, found a {}",
                frame.kind()
            ))
        })?;
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(malformed(format!(
                    "{label} takes {n} fields, found {}",
                    args.len()
                )))
            }
        };
        match label {
            "op:start-session" => {
                arity(4)?;
                let version = match &args[0] {
                    Value::String(s) => s.clone(),
                    other => {
                        return Err(malformed(format!(
                            "captp-version is not a string: {other:?}"
                        )));
                    }
                };
                Ok(Op::StartSession {
                    version,
                    pubkey: args[1].clone(),
                    location: args[2].clone(),
                    location_sig: args[3].clone(),
                })
            }
            "op:abort" => {
                arity(1)?;
                match &args[0] {
                    Value::String(s) | Value::Symbol(s) => Ok(Op::Abort(s.clone())),
                    other => Ok(Op::Abort(format!("{other:?}"))),
                }
            }
            "op:deliver-only" => {
                arity(2)?;
                Ok(Op::DeliverOnly {
                    to: target(&args[0])?,
                    args: list(&args[1], "op:deliver-only args")?.to_vec(),
                })
            }
            "op:deliver" => {
                arity(4)?;
                let to = target(&args[0])?;
                let margs = list(&args[1], "op:deliver args")?.to_vec();
                let answer_pos = match &args[2] {
                    Value::Bool(false) => None,
                    v => Some(position(v, "answer-pos")?),
                };
                let resolve_me = match &args[3] {
                    Value::Bool(false) => None,
                    v => Some(v.clone()),
                };
                if answer_pos.is_none() && resolve_me.is_none() {
                    return Ok(Op::DeliverOnly { to, args: margs });
                }
                Ok(Op::Deliver {
                    to,
                    args: margs,
                    answer_pos,
                    resolve_me,
                })
            }
            "op:listen" => {
                // The spec has two fields; the suite adds wants-partial.
                if args.len() != 2 && args.len() != 3 {
                    return Err(malformed(format!(
                        "op:listen takes 2 or 3 fields, found {}",
                        args.len()
                    )));
                }
                let wants_partial = match args.get(2) {
                    None | Some(Value::Bool(false)) => false,
                    Some(Value::Bool(true)) => true,
                    Some(v) => {
                        return Err(malformed(format!("wants-partial is not a boolean: {v:?}")));
                    }
                };
                Ok(Op::Listen {
                    to: target(&args[0])?,
                    resolve_me: args[1].clone(),
                    wants_partial,
                })
            }
            "op:get" | "op:index" | "op:untag" => {
                arity(3)?;
                let selector = match (label, &args[1]) {
                    ("op:get", Value::String(f)) => Selector::Field(f.clone()),
                    ("op:index", v) => Selector::Index(position(v, "op:index index")?),
                    ("op:untag", Value::String(t)) => Selector::Untag(t.clone()),
                    (_, v) => {
                        return Err(malformed(format!("{label} takes a string, not {v:?}")));
                    }
                };
                Ok(Op::Select {
                    to: target(&args[0])?,
                    selector,
                    answer_pos: position(&args[2], "new-answer-pos")?,
                })
            }
            "op:gc-export" | "op:gc-exports" => {
                arity(2)?;
                let positions = list(&args[0], "export positions")?;
                let deltas = list(&args[1], "wire deltas")?;
                if positions.len() != deltas.len() {
                    return Err(malformed(format!(
                        "{label} has {} positions but {} wire deltas",
                        positions.len(),
                        deltas.len()
                    )));
                }
                positions
                    .iter()
                    .zip(deltas)
                    .map(|(p, d)| Ok((position(p, "export position")?, position(d, "wire delta")?)))
                    .collect::<Result<_, _>>()
                    .map(Op::GcExports)
            }
            "op:gc-answer" | "op:gc-answers" => {
                arity(1)?;
                list(&args[0], "answer positions")?
                    .iter()
                    .map(|p| position(p, "answer position"))
                    .collect::<Result<_, _>>()
                    .map(Op::GcAnswers)
            }
            other => Err(CaptpError::UnknownOp(other.to_owned())),
        }
    }
}

/// Which labels a frame shows its sender speaks, if it uses a form only one of them has.
pub fn labels_of(frame: &Value) -> Option<Labels> {
    match frame.as_record()? {
        ("op:deliver-only" | "op:gc-export" | "op:gc-answer", _) => Some(Labels::Suite),
        ("op:gc-exports" | "op:gc-answers", _) => Some(Labels::Current),
        ("op:deliver", [_, _, Value::Bool(false), Value::Bool(false)]) => Some(Labels::Current),
        _ => None,
    }
}

/// The wire name of the GC ops in each set of labels.
pub(crate) fn gc_export_label(l: Labels) -> &'static str {
    match l {
        Labels::Suite => "op:gc-export",
        Labels::Current => "op:gc-exports",
    }
}

pub(crate) fn gc_answer_label(l: Labels) -> &'static str {
    match l {
        Labels::Suite => "op:gc-answer",
        Labels::Current => "op:gc-answers",
    }
}

#[cfg(test)]
mod owned_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_frame_parsed_owned_gives_the_op_parsed_borrowed_its_arguments_moved() {
        let chunk = Value::Bytes(vec![7; 64 * 1024]);
        let args = Value::List(vec![Value::symbol("out"), chunk]);
        let frames = [
            Value::record(
                "op:deliver",
                vec![
                    Value::record("desc:export", vec![Value::from(3)]),
                    args.clone(),
                    Value::from(5),
                    Value::Bool(false),
                ],
            ),
            Value::record(
                "op:deliver-only",
                vec![Value::record("desc:export", vec![Value::from(3)]), args],
            ),
            Value::record("op:abort", vec![Value::String("bye".into())]),
            Value::record("op:deliver", vec![Value::from(1)]),
        ];
        for (i, frame) in frames.into_iter().enumerate() {
            let parsed = Op::parse(&frame).map(|op| format!("{op:?}"));
            assert_eq!(parsed.is_ok(), i < 3, "{frame:?}: {parsed:?}");
            let owned = Op::parse_owned(frame.clone()).map(|op| format!("{op:?}"));
            assert_eq!(
                owned.map_err(|e| e.to_string()),
                parsed.map_err(|e| e.to_string()),
                "{frame:?}"
            );
        }
    }
}
