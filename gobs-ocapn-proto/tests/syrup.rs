//! Syrup: gobs' own golden vectors, canonical-form refusals, limits, and round-trip
//! properties. The vectors from outside references (the Syrup README and draft
//! specification, zoo.bin, Goblins' encoder) are in gobs-ocapn's syrup_references.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_ocapn_proto::syrup::{self, Limits, SyrupError, Value};
use proptest::prelude::*;

fn sym(s: &str) -> Value {
    Value::symbol(s)
}

#[test]
fn golden_vectors() {
    let cases: Vec<(Value, &[u8])> = vec![
        (Value::Bool(true), b"t"),
        (Value::Bool(false), b"f"),
        (Value::Int(0), b"0+"),
        (Value::Int(42), b"42+"),
        (Value::Int(-42), b"42-"),
        (
            Value::Int(i128::MAX),
            b"170141183460469231731687303715884105727+",
        ),
        (
            Value::Int(i128::MIN),
            b"170141183460469231731687303715884105728-",
        ),
        (Value::Bytes(b"bar".to_vec()), b"3:bar"),
        (Value::from("foo"), b"3\"foo"),
        (sym("fulfill"), b"7'fulfill"),
        (Value::from(""), b"0\""),
        (Value::from("é"), b"2\"\xc3\xa9"),
        (Value::F64(1.5), b"D\x3f\xf8\x00\x00\x00\x00\x00\x00"),
        (Value::F32(1.5), b"F\x3f\xc0\x00\x00"),
        (Value::List(vec![]), b"[]"),
        (
            Value::List(vec![
                "foo".into(),
                1.into(),
                false.into(),
                Value::Bytes(b"bar".to_vec()),
            ]),
            b"[3\"foo1+f3:bar]",
        ),
        (
            Value::record("desc:export", vec![0.into()]),
            b"<11'desc:export0+>",
        ),
        // Dictionary keys sorted by their encoded bytes (see syrup_references.rs for the cases
        // where that differs from sorting by name).
        (
            Value::Dict(vec![
                (Value::from("port"), Value::from("22045")),
                (Value::from("host"), Value::from("127.0.0.1")),
            ]),
            b"{4\"host9\"127.0.0.14\"port5\"22045}",
        ),
        (
            Value::Set(vec![sym("b"), sym("a"), 3.into()]),
            b"#1'a1'b3+$",
        ),
        (
            // The suite's op:deliver-only to the bootstrap object.
            Value::record(
                "op:deliver-only",
                vec![
                    Value::record("desc:export", vec![0.into()]),
                    Value::List(vec![sym("deposit-gift"), Value::Bytes(b"my-gift".to_vec())]),
                ],
            ),
            b"<15'op:deliver-only<11'desc:export0+>[12'deposit-gift7:my-gift]>",
        ),
    ];
    for (value, bytes) in cases {
        assert_eq!(syrup::encode(&value), bytes, "encoding {value:?}");
        assert_eq!(syrup::decode(bytes).unwrap(), value, "decoding {bytes:?}");
    }
}

#[test]
fn strings_symbols_and_bytes_stay_distinct() {
    let s = syrup::decode(b"3\"abc").unwrap();
    let y = syrup::decode(b"3'abc").unwrap();
    let b = syrup::decode(b"3:abc").unwrap();
    assert!(matches!(s, Value::String(_)));
    assert!(matches!(y, Value::Symbol(_)));
    assert!(matches!(b, Value::Bytes(_)));
    assert_ne!(s, y);
    assert_ne!(y, b);
    assert_ne!(s, b);
}

#[test]
fn non_canonical_input_is_refused() {
    for (bad, what) in [
        (&b"007+"[..], "leading zero"),
        (b"0-", "negative zero"),
        (b"03:abc", "leading zero"),
        (
            b"{1'b1+1'a1+}",
            "dictionary keys not in strictly increasing order",
        ),
        (
            b"{1'a1+1'a2+}",
            "dictionary keys not in strictly increasing order",
        ),
        (b"#1'b1'a$", "set items not in strictly increasing order"),
        (b"<>", "record without a label"),
    ] {
        match syrup::decode(bad) {
            Err(SyrupError::NonCanonical { what: w, .. }) => assert_eq!(w, what, "{bad:?}"),
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    for bad in [
        &b"x"[..],
        b"3\"ab",
        b"[1+",
        b"<3'abc",
        b"12",
        b"3*abc",
        b"2\"\xff\xfe",
        b"D\x00\x01",
        b"1+1+",
        b"}",
        b"999999999999999999999999999999999999999999+",
    ] {
        assert!(syrup::decode(bad).is_err(), "{bad:?} decoded");
    }
    assert_eq!(syrup::decode(b"[1+"), Err(SyrupError::Incomplete));
    assert_eq!(
        syrup::decode(b"1+1+"),
        Err(SyrupError::Trailing { count: 2 })
    );
}

#[test]
fn limits_are_checked_before_allocating() {
    let limits = Limits {
        max_len: 8,
        max_count: 3,
        max_depth: 4,
    };
    // A claimed length of 1 TB is refused at once, without waiting for (or allocating) it.
    match syrup::decode_with(b"1000000000000:", &limits) {
        Err(SyrupError::Limit { what, limit: 8, .. }) => assert_eq!(what, "byte string length"),
        other => panic!("{other:?}"),
    }
    assert!(syrup::decode_with(b"8:12345678", &limits).is_ok());
    match syrup::decode_with(b"[1+2+3+4+]", &limits) {
        Err(SyrupError::Limit { what, .. }) => assert_eq!(what, "items in one container"),
        other => panic!("{other:?}"),
    }
    match syrup::decode_with(b"{1+1+2+2+3+3+4+4+}", &limits) {
        Err(SyrupError::Limit { what, .. }) => assert_eq!(what, "items in one container"),
        other => panic!("{other:?}"),
    }
    assert!(syrup::decode_with(b"[[[[]]]]", &limits).is_ok());
    match syrup::decode_with(b"[[[[[]]]]]", &limits) {
        Err(SyrupError::Limit { what, .. }) => assert_eq!(what, "nesting depth"),
        other => panic!("{other:?}"),
    }
    // Deep nesting from a hostile peer: refused, no stack overflow.
    let deep = vec![b'['; 1_000_000];
    assert!(matches!(
        syrup::decode(&deep),
        Err(SyrupError::Limit {
            what: "nesting depth",
            ..
        })
    ));
}

#[test]
fn prefix_decoding_frames_a_stream() {
    let stream = b"<8'op:abort3\"bye>[";
    let (v, used) = syrup::decode_prefix(stream, &Limits::default()).unwrap();
    assert_eq!(v, Value::record("op:abort", vec!["bye".into()]));
    assert_eq!(used, 17);
    assert_eq!(
        syrup::decode_prefix(&stream[used..], &Limits::default()),
        Err(SyrupError::Incomplete)
    );
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
enum Shape {
    Dot,
    Circle(u32),
    Rect { w: i64, h: i64 },
    Pair(String, bool),
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Scene {
    name: String,
    shapes: Vec<Shape>,
    scale: f64,
    tag: Option<String>,
    nothing: (),
    table: std::collections::BTreeMap<String, u8>,
}

#[test]
fn serde_mapping_is_the_documented_one() {
    let scene = Scene {
        name: "s".into(),
        shapes: vec![
            Shape::Dot,
            Shape::Circle(2),
            Shape::Rect { w: -1, h: 2 },
            Shape::Pair("p".into(), true),
        ],
        scale: 0.5,
        tag: None,
        nothing: (),
        table: [("a".to_string(), 1u8)].into_iter().collect(),
    };
    let bytes = syrup::to_bytes(&scene).unwrap();
    assert_eq!(
        bytes,
        &b"<5'Scene1\"s[3'Dot<6'Circle2+><4'Rect1-2+><4'Pair1\"pt>]D\x3f\xe0\x00\x00\x00\x00\x00\x00<4'none>[]{1\"a1+}>"[..]
    );
    let back: Scene = syrup::from_bytes(&bytes).unwrap();
    assert_eq!(back, scene);
}

#[test]
fn serde_errors_say_what_was_expected() {
    let err = syrup::from_bytes::<u8>(b"300+").unwrap_err();
    assert_eq!(err.to_string(), "syrup: integer 300 does not fit a u8");
    let err = syrup::from_bytes::<String>(b"3'abc").unwrap_err();
    assert_eq!(err.to_string(), "syrup: expected a string, found a symbol");
    let err = syrup::from_bytes::<Scene>(b"<4'Nope>").unwrap_err();
    assert!(
        err.to_string().contains("expected a <Scene ...> record"),
        "{err}"
    );
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i128>().prop_map(Value::Int),
        any::<u32>().prop_map(|b| Value::F32(f32::from_bits(b))),
        any::<u64>().prop_map(|b| Value::F64(f64::from_bits(b))),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
        ".{0,8}".prop_map(Value::String),
        "[a-z:-]{0,8}".prop_map(Value::Symbol),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..5).prop_map(|pairs| {
                // Keys must be distinct to be a dictionary.
                let mut seen = std::collections::BTreeSet::new();
                Value::Dict(
                    pairs
                        .into_iter()
                        .filter(|(k, _)| seen.insert(syrup::encode(k)))
                        .collect(),
                )
            }),
            proptest::collection::vec(inner.clone(), 0..5).prop_map(|items| {
                let mut seen = std::collections::BTreeSet::new();
                Value::Set(
                    items
                        .into_iter()
                        .filter(|i| seen.insert(syrup::encode(i)))
                        .collect(),
                )
            }),
            ("[a-z:-]{1,8}", proptest::collection::vec(inner, 0..4))
                .prop_map(|(l, args)| Value::record(&l, args)),
        ]
    })
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_value(v in arb_value()) {
        let bytes = syrup::encode(&v);
        let back = syrup::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &v);
        // decode→encode is byte-exact.
        prop_assert_eq!(syrup::encode(&back), bytes);
    }

    #[test]
    fn every_truncation_is_incomplete(v in arb_value()) {
        let bytes = syrup::encode(&v);
        for cut in 0..bytes.len() {
            let r = syrup::decode_prefix(&bytes[..cut], &Limits::default());
            prop_assert_eq!(r, Err(SyrupError::Incomplete), "prefix of {} bytes", cut);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_ones_reencode_exactly(
        bytes in proptest::collection::vec(any::<u8>(), 0..64)
    ) {
        if let Ok(v) = syrup::decode(&bytes) {
            prop_assert_eq!(syrup::encode(&v), bytes);
        }
    }

    #[test]
    fn serde_round_trip(name in ".{0,10}", xs in proptest::collection::vec(any::<i64>(), 0..8), tag in proptest::option::of(".{0,4}")) {
        let scene = Scene {
            name,
            shapes: xs.iter().map(|&w| Shape::Rect { w, h: -w / 2 }).collect(),
            scale: 2.0,
            tag,
            nothing: (),
            table: Default::default(),
        };
        let bytes = syrup::to_bytes(&scene).unwrap();
        let back: Scene = syrup::from_bytes(&bytes).unwrap();
        prop_assert_eq!(back, scene);
    }
}

proptest! {
    /// The direct byte serializer writes exactly what encoding the Value would.
    #[test]
    fn direct_serializer_matches_the_value_path(
        name in ".{0,10}",
        ws in proptest::collection::vec(any::<i64>(), 0..6),
        table in proptest::collection::btree_map(".{0,6}", any::<u8>(), 0..6),
        tag in proptest::option::of(".{0,4}"),
        scale in any::<f64>(),
    ) {
        let mut shapes = vec![Shape::Dot, Shape::Pair(name.clone(), true)];
        shapes.extend(ws.iter().map(|&w| Shape::Rect { w, h: w / 3 }));
        shapes.extend(ws.iter().map(|&w| Shape::Circle(w as u32)));
        let scene = Scene { name, shapes, scale, tag, nothing: (), table };
        let direct = syrup::to_bytes(&scene).unwrap();
        let via_value = syrup::encode(&syrup::to_value(&scene).unwrap());
        prop_assert_eq!(&direct, &via_value);
        let back: Scene = syrup::from_bytes(&direct).unwrap();
        prop_assert_eq!(syrup::to_bytes(&back).unwrap(), direct);
    }
}

/// Largest string length, container count and nesting depth in `v`.
fn extent(v: &Value) -> (usize, usize, usize) {
    let child = |items: &mut dyn Iterator<Item = &Value>, n: usize| {
        items.fold((0, n, 0), |(l, c, d), i| {
            let (il, ic, id) = extent(i);
            (l.max(il), c.max(ic), d.max(id))
        })
    };
    let (l, c, d) = match v {
        Value::Bytes(b) => return (b.len(), 0, 0),
        Value::String(s) | Value::Symbol(s) => return (s.len(), 0, 0),
        Value::List(items) | Value::Set(items) => child(&mut items.iter(), items.len()),
        Value::Dict(pairs) => child(&mut pairs.iter().flat_map(|(k, v)| [k, v]), pairs.len()),
        // The label is nested like an item but not counted as one.
        Value::Record(label, args) => child(&mut std::iter::once(&**label).chain(args), args.len()),
        _ => return (0, 0, 0),
    };
    (l, c, d + 1)
}

proptest! {
    /// A stream of values back to back (what a CapTP session reads) comes apart into the
    /// same values, each taking exactly its own encoding's bytes.
    #[test]
    fn a_stream_of_values_decodes_one_by_one(vs in proptest::collection::vec(arb_value(), 1..6)) {
        let mut stream = Vec::new();
        for v in &vs {
            syrup::encode_into(v, &mut stream);
        }
        let mut rest = &stream[..];
        for v in &vs {
            let (back, used) = syrup::decode_prefix(rest, &Limits::default()).unwrap();
            prop_assert_eq!(&back, v);
            prop_assert_eq!(used, syrup::encode(v).len());
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    /// Under tight limits a value decodes only if it is within them; past them the error
    /// is a limit error (never a panic, never a wrong value).
    #[test]
    fn limits_accept_exactly_the_values_within_them(
        v in arb_value(),
        max_len in 0usize..10,
        max_count in 0usize..6,
        max_depth in 0usize..4,
    ) {
        let limits = Limits { max_len, max_count, max_depth };
        let bytes = syrup::encode(&v);
        let (l, c, d) = extent(&v);
        match syrup::decode_with(&bytes, &limits) {
            Ok(back) => {
                prop_assert_eq!(&back, &v);
                prop_assert!(l <= max_len && c <= max_count && d <= max_depth, "{l} {c} {d}");
            }
            Err(SyrupError::Limit { .. }) => {
                prop_assert!(l > max_len || c > max_count || d > max_depth, "{l} {c} {d}");
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
