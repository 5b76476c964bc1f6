//! The ops every far call brings, read straight from the bytes: `op:deliver` (and
//! `op:deliver-only`) to an export or an answer, with an answer position and a resolver
//! or neither, and `op:gc-answer(s)`. Decoding them into a Syrup [`Value`] tree and then
//! into an [`Op`](super::Op) allocated and freed a dozen labels and records per message
//! on each side; here only the arguments are decoded (by the Syrup decoder itself, under
//! the same limits).
//!
//! The reader takes a frame only if it is exactly one of these shapes, in canonical
//! Syrup, within the limits; anything else — another op, another resolver form, an
//! incomplete or malformed frame — is left to the general path (decode, then
//! [`Op::parse`](super::Op::parse)), which accepts or refuses it with its reason. So a
//! frame taken here is one the general path takes too, as the same op (a test and the
//! fuzzing harness check it).

use super::Labels;
use super::ops::Target;
use crate::syrup::{Cursor, Limits, Value};

/// A hot op, as read.
#[derive(Debug)]
pub(crate) enum Hot {
    /// `op:deliver` or `op:deliver-only`.
    Deliver {
        to: Target,
        args: Vec<Value>,
        answer_pos: Option<u64>,
        /// The resolver's import position, and whether it is a promise
        /// (`desc:import-promise`) or an object (`desc:import-object`).
        resolve_me: Option<(u64, bool)>,
    },
    /// `op:gc-answer(s)`.
    GcAnswers(Vec<u64>),
    /// `op:gc-export(s)`: positions and their wire deltas.
    GcExports(Vec<(u64, u64)>),
}

/// A hot frame at the start of `input`: the op, the bytes it took, and the labels it
/// shows its sender speaks (as [`super::labels_of`] says). `None` if the frame is not one
/// (see the module's docs).
pub(crate) fn read(input: &[u8], limits: &Limits) -> Option<(Hot, usize, Option<Labels>)> {
    // Limits this small refuse a hot frame's own labels or nesting: the general path says so.
    if limits.max_len < 32 || limits.max_count <= 4 || limits.max_depth <= 2 {
        return None;
    }
    let mut c = Cursor::new(input, limits);
    let (hot, labels) = if c.eat(b"<10'op:deliver<") {
        let to = target(&mut c)?;
        let args = list(&mut c)?;
        let answer_pos = if c.eat(b"f") { None } else { Some(c.uint()?) };
        let resolve_me = if c.eat(b"f") {
            None
        } else if c.eat(b"<19'desc:import-promise") {
            Some((c.uint()?, true))
        } else if c.eat(b"<18'desc:import-object") {
            Some((c.uint()?, false))
        } else {
            return None;
        };
        if resolve_me.is_some() && !c.eat(b">") {
            return None;
        }
        // `op:deliver … #f #f` is the current labels' message that wants no answer.
        let labels = (answer_pos.is_none() && resolve_me.is_none()).then_some(Labels::Current);
        let hot = Hot::Deliver {
            to,
            args,
            answer_pos,
            resolve_me,
        };
        (hot, labels)
    } else if c.eat(b"<15'op:deliver-only<") {
        let to = target(&mut c)?;
        let args = list(&mut c)?;
        let hot = Hot::Deliver {
            to,
            args,
            answer_pos: None,
            resolve_me: None,
        };
        (hot, Some(Labels::Suite))
    } else if c.eat(b"<12'op:gc-answer[") {
        (Hot::GcAnswers(positions(&mut c)?), Some(Labels::Suite))
    } else if c.eat(b"<13'op:gc-answers[") {
        (Hot::GcAnswers(positions(&mut c)?), Some(Labels::Current))
    } else if c.eat(b"<12'op:gc-export[") {
        (Hot::GcExports(gc_exports(&mut c)?), Some(Labels::Suite))
    } else if c.eat(b"<13'op:gc-exports[") {
        (Hot::GcExports(gc_exports(&mut c)?), Some(Labels::Current))
    } else {
        return None;
    };
    c.eat(b">").then(|| (hot, c.used(), labels))
}

/// `desc:export N>` or `desc:answer N>`, after its `<`.
fn target(c: &mut Cursor<'_, '_>) -> Option<Target> {
    let to = if c.eat(b"11'desc:export") {
        Target::Export(c.uint()?)
    } else if c.eat(b"11'desc:answer") {
        Target::Answer(c.uint()?)
    } else {
        return None;
    };
    c.eat(b">").then_some(to)
}

/// A list of arguments, a field of the frame's record.
fn list(c: &mut Cursor<'_, '_>) -> Option<Vec<Value>> {
    if !c.eat(b"[") {
        return None;
    }
    c.list_items(1)
}

/// The positions and the wire deltas of `op:gc-export(s)`, after the first list's `[`:
/// as many of each.
fn gc_exports(c: &mut Cursor<'_, '_>) -> Option<Vec<(u64, u64)>> {
    let mut pairs = Vec::with_capacity(1);
    uints(c, |p| pairs.push((p, 0)))?;
    if !c.eat(b"[") {
        return None;
    }
    let mut deltas = 0;
    uints(c, |d| {
        if let Some(pair) = pairs.get_mut(deltas) {
            pair.1 = d;
        }
        deltas += 1;
    })?;
    (deltas == pairs.len()).then_some(pairs)
}

/// The positions of `op:gc-answer(s)`, after the list's `[`, and the `]`.
fn positions(c: &mut Cursor<'_, '_>) -> Option<Vec<u64>> {
    let mut list = Vec::with_capacity(1);
    uints(c, |p| list.push(p))?;
    Some(list)
}

/// Each integer of a list of non-negative ones, after its `[`, to `each`; and the `]`.
fn uints(c: &mut Cursor<'_, '_>, mut each: impl FnMut(u64)) -> Option<()> {
    let mut count = 0;
    while !c.eat(b"]") {
        if count >= c.limits().max_count {
            return None;
        }
        each(c.uint()?);
        count += 1;
    }
    Some(())
}

#[cfg(any(test, feature = "fuzzing"))]
impl Hot {
    /// The op the general path makes of the same frame (for the tests and the fuzzing
    /// harness, which check that they agree).
    pub(crate) fn into_op(self) -> super::Op {
        use super::Op;
        match self {
            Hot::Deliver {
                to,
                args,
                answer_pos: None,
                resolve_me: None,
            } => Op::DeliverOnly { to, args },
            Hot::Deliver {
                to,
                args,
                answer_pos,
                resolve_me,
            } => Op::Deliver {
                to,
                args,
                answer_pos,
                resolve_me: resolve_me.map(|(p, promise)| {
                    let label = if promise {
                        "desc:import-promise"
                    } else {
                        "desc:import-object"
                    };
                    Value::record(label, vec![Value::from(p)])
                }),
            },
            Hot::GcAnswers(list) => Op::GcAnswers(list),
            Hot::GcExports(list) => Op::GcExports(list),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::captp::{Op, labels_of};
    use crate::syrup::{decode_prefix, encode};

    /// Whatever the hot reader takes, the general path takes as the same op, the same
    /// length and the same labels.
    fn agrees(bytes: &[u8], limits: &Limits) -> bool {
        let Some((hot, used, labels)) = read(bytes, limits) else {
            return false;
        };
        let (frame, general_used) = decode_prefix(bytes, limits).unwrap();
        assert_eq!(used, general_used, "{}", String::from_utf8_lossy(bytes));
        assert_eq!(labels, labels_of(&frame));
        let general = Op::parse(&frame).unwrap();
        assert_eq!(format!("{:?}", hot.into_op()), format!("{general:?}"));
        true
    }

    fn deliver(to: &str, answer: Value, resolve_me: Value) -> Value {
        Value::record(
            "op:deliver",
            vec![
                Value::record(to, vec![Value::from(3)]),
                Value::List(vec![Value::symbol("echo"), Value::from(42)]),
                answer,
                resolve_me,
            ],
        )
    }

    #[test]
    fn the_hot_ops_read_as_the_general_path_reads_them() {
        let promise = Value::record("desc:import-promise", vec![Value::from(5)]);
        let object = Value::record("desc:import-object", vec![Value::from(0)]);
        let frames = [
            deliver("desc:export", Value::from(77), promise.clone()),
            deliver("desc:answer", Value::from(0), object),
            deliver("desc:export", Value::Bool(false), promise),
            deliver("desc:export", Value::Bool(false), Value::Bool(false)),
            deliver("desc:export", Value::from(u64::MAX), Value::Bool(false)),
            Value::record(
                "op:deliver-only",
                vec![
                    Value::record("desc:export", vec![Value::from(12)]),
                    Value::List(vec![Value::symbol("fulfill"), Value::List(vec![])]),
                ],
            ),
            Value::record(
                "op:gc-answer",
                vec![Value::List(vec![Value::from(1), Value::from(20)])],
            ),
            Value::record("op:gc-answers", vec![Value::List(vec![])]),
            Value::record(
                "op:gc-export",
                vec![
                    Value::List(vec![Value::from(24)]),
                    Value::List(vec![Value::from(1)]),
                ],
            ),
            Value::record(
                "op:gc-exports",
                vec![
                    Value::List(vec![Value::from(2), Value::from(9)]),
                    Value::List(vec![Value::from(1), Value::from(3)]),
                ],
            ),
        ];
        let limits = Limits::default();
        for frame in frames {
            let mut bytes = encode(&frame);
            assert!(agrees(&bytes, &limits), "{frame:?} is read");
            // What follows the frame is the next one's.
            bytes.extend_from_slice(b"<8'op:abort3\"bye>");
            assert!(agrees(&bytes, &limits), "{frame:?} is read, then stops");
        }
    }

    proptest::proptest! {
        /// Hot frames changed at random (a byte replaced by one that means something in
        /// Syrup, a byte inserted, the end cut): whatever the reader still takes, the
        /// general path takes as the same op.
        #[test]
        fn changed_frames_are_read_only_as_the_general_path_reads_them(
            which in 0usize..4,
            edits in proptest::collection::vec((0usize..200, 0usize..24, 0u8..3), 1..4),
            cut in 0usize..200,
        ) {
            const BYTES: &[u8] = b"<>[]{}#$'\":+-ft0123456789";
            let frames: [&[u8]; 4] = [
                b"<10'op:deliver<11'desc:export3+>[4'echo42+]77+<19'desc:import-promise5+>>",
                b"<15'op:deliver-only<11'desc:export24+>[7'fulfill42+]>",
                b"<12'op:gc-answer[23+]>",
                b"<12'op:gc-export[24+][1+]>",
            ];
            let mut bytes = frames[which].to_vec();
            for (at, byte, how) in edits {
                let at = at % (bytes.len() + 1);
                let byte = BYTES[byte % BYTES.len()];
                match how {
                    0 if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.insert(at, byte),
                }
            }
            bytes.truncate(cut.max(1));
            for limits in [Limits::default(), Limits { max_depth: 3, max_count: 5, max_len: 64 }] {
                if let Some((hot, used, labels)) = read(&bytes, &limits) {
                    let (frame, general_used) = decode_prefix(&bytes, &limits).unwrap();
                    proptest::prop_assert_eq!(used, general_used);
                    proptest::prop_assert_eq!(labels, labels_of(&frame));
                    let general = Op::parse(&frame).map(|op| format!("{op:?}"));
                    proptest::prop_assert_eq!(Ok(format!("{:?}", hot.into_op())), general.map_err(|e| e.to_string()));
                }
            }
        }
    }

    #[test]
    fn frames_of_other_shapes_are_left_to_the_general_path() {
        let limits = Limits::default();
        let frames: [&[u8]; 16] = [
            // Positions without as many deltas, a delta list missing.
            b"<12'op:gc-export[24+][]>",
            b"<12'op:gc-export[24+]>",
            // Incomplete.
            b"<10'op:deliver<11'desc:export3+>[4'echo42+]7",
            b"<12'op:gc-answer[1+",
            // Not canonical: a leading zero, a negative position.
            b"<10'op:deliver<11'desc:export03+>[]ff>",
            b"<12'op:gc-answer[1-]>",
            // A position past u64.
            b"<12'op:gc-answer[18446744073709551616+]>",
            // Another resolver form, a field too many or too few, another op.
            b"<10'op:deliver<11'desc:export3+>[]1+<11'desc:export2+>>",
            b"<10'op:deliver<11'desc:export3+>[]fff>",
            b"<10'op:deliver<11'desc:export3+>[]f>",
            b"<15'op:deliver-only<11'desc:export3+>[]f>",
            b"<9'op:listen<11'desc:export3+><19'desc:import-promise1+>f>",
            // An argument list that is not one, or is malformed inside.
            b"<15'op:deliver-only<11'desc:export3+>4'echo>",
            b"<15'op:deliver-only<11'desc:export3+>[4'ech]>",
            b"<15'op:deliver-only<11'desc:export3+>[{1'b1+1'a2+}]>",
            // A target that is not a descriptor.
            b"<15'op:deliver-only<11'desc:import3+>[]>",
        ];
        for bytes in frames {
            assert!(
                read(bytes, &limits).is_none(),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Within the limits only: arguments nested past the depth allowed are refused by
        // the general path, and not read here.
        let deep = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        let nested = b"<15'op:deliver-only<11'desc:export3+>[[[]]]>";
        assert!(decode_prefix(nested, &deep).is_err());
        assert!(read(nested, &deep).is_none());
        let few = Limits {
            max_count: 5,
            ..Limits::default()
        };
        let many = b"<15'op:deliver-only<11'desc:export3+>[1+2+3+4+5+6+]>";
        assert!(decode_prefix(many, &few).is_err());
        assert!(read(many, &few).is_none());
        let gc = b"<12'op:gc-answer[1+2+3+4+5+6+]>";
        assert!(decode_prefix(gc, &few).is_err());
        assert!(read(gc, &few).is_none());
    }
}
