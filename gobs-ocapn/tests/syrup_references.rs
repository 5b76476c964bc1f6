//! gobs' Syrup against references it did not write: the examples of the Syrup README and
//! draft specification and the Syrup repository's `test-data/zoo.bin` (all at
//! [`SYRUP_COMMIT`]), and Goblins 0.18's own encoder (`vectors/goblins.scm`): every kind of
//! value, and dictionaries and sets whose byte order differs from name, number and kind order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod vectors;

use gobs_ocapn::syrup::{self, SyrupError, Value};
use vectors::{SYRUP_COMMIT, assert_both_ways, goblins, vector};

fn sym(s: &str) -> Value {
    Value::symbol(s)
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn dict(pairs: Vec<(Value, Value)>) -> Value {
    Value::Dict(pairs)
}

/// The README's record with a string label (also encoded by Goblins).
fn readme_date() -> Value {
    let fields = [2020, 5, 1, 14, 8, 11];
    Value::Record(
        Box::new("date".into()),
        fields.into_iter().map(Value::from).collect(),
    )
}

#[test]
fn syrup_readme_examples() {
    // README.org, "Quick intro" (the Python examples), at SYRUP_COMMIT.
    let readme: Vec<(&str, Value, &[u8])> = vec![
        ("bytestring", bytes(b"a bytestring"), b"12:a bytestring"),
        ("string", "a string".into(), b"8\"a string"),
        ("symbol", sym("foo"), b"3'foo"),
        ("integer 42", 42.into(), b"42+"),
        ("integer 0", 0.into(), b"0+"),
        ("integer -123", (-123).into(), b"123-"),
        (
            "double 123.456",
            Value::F64(123.456),
            b"D@^\xdd/\x1a\x9f\xbew",
        ),
        ("true", true.into(), b"t"),
        ("false", false.into(), b"f"),
        (
            "list",
            Value::List(vec!["foo".into(), 123.into(), true.into()]),
            b"[3\"foo123+t]",
        ),
        (
            "dictionary",
            dict(vec![
                ("species".into(), "cat".into()),
                ("name".into(), "Tabatha".into()),
                ("age".into(), 12.into()),
            ]),
            b"{3\"age12+4\"name7\"Tabatha7\"species3\"cat}",
        ),
        (
            "set",
            Value::Set(vec!["cookie".into(), "milk".into(), "napkin".into()]),
            b"#4\"milk6\"cookie6\"napkin$",
        ),
        (
            "record with a string label",
            readme_date(),
            b"<4\"date2020+5+1+14+8+11+>",
        ),
    ];
    for (what, value, expected) in readme {
        assert_both_ways(&format!("README {what} ({SYRUP_COMMIT})"), &value, expected);
    }
}

#[test]
fn syrup_draft_specification_examples() {
    // draft-specification.md, the "Example(s)" of each type, at SYRUP_COMMIT.
    let spec: Vec<(&str, Value, &[u8])> = vec![
        ("zero", 0.into(), b"0+"),
        ("72", 72.into(), b"72+"),
        ("-5", (-5).into(), b"5-"),
        ("binary data", bytes(b"cat"), b"3:cat"),
        ("string bear", "bear".into(), b"4\"bear"),
        ("string björn", "björn".into(), "6\"björn".as_bytes()),
        ("string 熊", "熊".into(), "3\"熊".as_bytes()),
        ("symbol fetch", sym("fetch"), b"5'fetch"),
        ("symbol hämta", sym("hämta"), "6'hämta".as_bytes()),
        (
            // Keys sort as encoded: "7:isAlive" after "4:name" though "isAlive" < "name".
            // (The text calls "Alice" a string; the encoding shown, which this follows, has
            // it as bytes.)
            "dictionary",
            dict(vec![
                (bytes(b"name"), bytes(b"Alice")),
                (bytes(b"age"), 30.into()),
                (bytes(b"isAlive"), true.into()),
            ]),
            b"{3:age30+4:name5:Alice7:isAlivet}",
        ),
        (
            "sequence",
            Value::List(vec![1.into(), 2.into(), 3.into()]),
            b"[1+2+3+]",
        ),
        (
            // The text says a symbol label and a string; the encoding shown has bytes.
            "record",
            Value::Record(
                Box::new(bytes(b"person")),
                vec![bytes(b"Alice"), 30.into(), true.into()],
            ),
            b"<6:person5:Alice30+t>",
        ),
        (
            "set",
            Value::Set(vec![3.into(), 2.into(), 1.into()]),
            b"#1+2+3+$",
        ),
    ];
    for (what, value, expected) in spec {
        assert_both_ways(
            &format!("draft spec {what} ({SYRUP_COMMIT})"),
            &value,
            expected,
        );
    }
}

/// The zoo the Syrup repository's Python, Racket and Guile implementations test against.
fn zoo() -> Value {
    let animal = |species: &[u8], name: &str, age: i64, weight: f64, alive, eats: &[&[u8]]| {
        dict(vec![
            (sym("species"), bytes(species)),
            (sym("name"), name.into()),
            (sym("age"), age.into()),
            (sym("weight"), Value::F64(weight)),
            (sym("alive?"), Value::Bool(alive)),
            (
                sym("eats"),
                Value::Set(eats.iter().map(|e| bytes(e)).collect()),
            ),
        ])
    };
    Value::Record(
        Box::new(bytes(b"zoo")),
        vec![
            "The Grand Menagerie".into(),
            Value::List(vec![
                animal(
                    b"cat",
                    "Tabatha",
                    12,
                    8.2,
                    true,
                    &[b"mice", b"fish", b"kibble"],
                ),
                animal(
                    b"monkey",
                    "George",
                    6,
                    17.24,
                    false,
                    &[b"bananas", b"insects"],
                ),
                animal(b"ghost", "Casper", -12, -34.5, false, &[]),
            ]),
        ],
    )
}

#[test]
fn syrup_repository_zoo() {
    // test-data/zoo.bin at SYRUP_COMMIT, byte for byte (impls/python/syrup.py, _test_syrup).
    let zoo_bin = include_bytes!("vectors/syrup-zoo.bin");
    assert_both_ways(&format!("zoo.bin ({SYRUP_COMMIT})"), &zoo(), zoo_bin);
}

/// Every value `vectors/goblins.scm` encodes under `syrup:<name>`, built here independently.
fn goblins_syrup_values() -> Vec<(&'static str, Value)> {
    let rec = |label: &str, args: Vec<Value>| Value::record(label, args);
    let two_64 = 1i128 << 64;
    vec![
        ("true", true.into()),
        ("false", false.into()),
        ("int-0", 0.into()),
        ("int-42", 42.into()),
        ("int-minus-42", (-42).into()),
        ("int-2^63-1", i64::MAX.into()),
        ("int-2^64", Value::Int(two_64)),
        ("int-minus-2^64", Value::Int(-two_64)),
        ("int-2^70", Value::Int(1 << 70)),
        ("int-2^127-1", Value::Int(i128::MAX)),
        ("int-minus-2^127", Value::Int(i128::MIN)),
        ("bytes-empty", bytes(b"")),
        ("bytes-bar", bytes(b"bar")),
        ("bytes-binary", bytes(&[0, 255, 10, 34, 58])),
        ("string-empty", "".into()),
        ("string-foo", "foo".into()),
        ("string-bjorn", "björn".into()),
        ("string-bear", "熊".into()),
        ("string-quote-newline", "say \"hi\"\n".into()),
        ("symbol-empty", sym("")),
        ("symbol-fetch", sym("fetch")),
        ("symbol-hamta", sym("hämta")),
        ("symbol-op-deliver", sym("op:deliver")),
        ("double-1.5", Value::F64(1.5)),
        ("double-minus-34.5", Value::F64(-34.5)),
        ("double-0.1", Value::F64(0.1)),
        ("double-minus-zero", Value::F64(-0.0)),
        ("double-inf", Value::F64(f64::INFINITY)),
        ("double-nan", Value::F64(f64::NAN)),
        ("single-1.5", Value::F32(1.5)),
        ("single-minus-0.25", Value::F32(-0.25)),
        ("list-empty", Value::List(vec![])),
        (
            "list-mixed",
            Value::List(vec!["foo".into(), 123.into(), true.into(), bytes(b"bar")]),
        ),
        (
            "list-nested",
            Value::List(vec![
                1.into(),
                Value::List(vec![2.into(), Value::List(vec![3.into()])]),
                Value::List(vec![]),
            ]),
        ),
        ("dict-empty", dict(vec![])),
        (
            "dict-hints",
            dict(vec![
                ("host".into(), "127.0.0.1".into()),
                ("port".into(), "22045".into()),
            ]),
        ),
        (
            "dict-length-before-name",
            dict(vec![(sym("abcd"), 1.into()), (sym("zzzzzzzzzz"), 2.into())]),
        ),
        (
            "dict-int-keys",
            dict(vec![
                (4.into(), sym("four")),
                (10.into(), sym("ten")),
                ((-1).into(), sym("minus-one")),
            ]),
        ),
        (
            "dict-kinds",
            dict(vec![
                (3.into(), sym("int")),
                (sym("abc"), sym("symbol")),
                ("abc".into(), sym("string")),
                (bytes(b"abc"), sym("bytes")),
            ]),
        ),
        (
            "dict-compound-keys",
            dict(vec![
                (Value::List(vec![1.into(), 2.into()]), sym("list")),
                (rec("pt", vec![1.into()]), sym("record")),
                (true.into(), sym("true")),
            ]),
        ),
        ("set-empty", Value::Set(vec![])),
        (
            "set-strings",
            Value::Set(vec!["napkin".into(), "cookie".into(), "milk".into()]),
        ),
        (
            "set-ints",
            Value::Set(vec![4.into(), 10.into(), (-1).into()]),
        ),
        ("record-export", rec("desc:export", vec![0.into()])),
        ("record-no-fields", rec("op:ping", vec![])),
        ("record-string-label", readme_date()),
        (
            "record-nested",
            rec(
                "outer",
                vec![
                    rec("inner", vec!["x".into()]),
                    Value::List(vec![rec("leaf", vec![])]),
                ],
            ),
        ),
        ("zoo", zoo()),
        (
            "op-deliver",
            rec(
                "op:deliver",
                vec![
                    rec("desc:export", vec![0.into()]),
                    Value::List(vec![sym("fetch"), bytes(b"abc")]),
                    1.into(),
                    rec("desc:import-object", vec![2.into()]),
                ],
            ),
        ),
        (
            "op-deliver-no-answer",
            rec(
                "op:deliver",
                vec![
                    rec("desc:export", vec![5.into()]),
                    Value::List(vec!["hi".into(), 3.into()]),
                    false.into(),
                    false.into(),
                ],
            ),
        ),
        (
            "op-gc-exports",
            rec(
                "op:gc-exports",
                vec![
                    Value::List(vec![1.into(), 2.into()]),
                    Value::List(vec![1.into(), 3.into()]),
                ],
            ),
        ),
    ]
}

#[test]
fn syrup_as_goblins_encodes_it() {
    let vectors = goblins();
    let ours = goblins_syrup_values();
    for (name, value) in &ours {
        let expected = vector(&vectors, &format!("syrup:{name}"));
        assert_both_ways(&format!("Goblins syrup:{name}"), value, expected);
    }
    // Neither side may drop a vector silently.
    let theirs: Vec<&str> = vectors
        .keys()
        .filter_map(|k| k.strip_prefix("syrup:"))
        .collect();
    let mine: Vec<&str> = ours.iter().map(|(n, _)| *n).collect();
    let mut missing: Vec<&&str> = theirs.iter().filter(|n| !mine.contains(n)).collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "Goblins vectors with no gobs value: {missing:?}"
    );
}

#[test]
fn dictionary_keys_sort_by_encoded_bytes_not_by_name() {
    let vectors = goblins();
    // By name "abcd" < "zzzzzzzzzz"; as encoded "10'zzzzzzzzzz" < "4'abcd". Goblins agrees.
    let by_bytes = vector(&vectors, "syrup:dict-length-before-name");
    assert_eq!(by_bytes, b"{10'zzzzzzzzzz2+4'abcd1+}");
    // By number 4 < 10; as encoded "1-" < "10+" < "4+".
    assert_eq!(
        vector(&vectors, "syrup:dict-int-keys"),
        b"{1-9'minus-one10+3'ten4+4'four}"
    );
    // The order a name sort would give is not canonical, so gobs refuses it (a signature
    // over it could not be checked by anyone who re-encodes).
    for by_name in [
        &b"{4'abcd1+10'zzzzzzzzzz2+}"[..],
        b"{4+4'four10+3'ten}",
        b"#4+10+$",
    ] {
        match syrup::decode(by_name) {
            Err(SyrupError::NonCanonical { .. }) => {}
            other => panic!(
                "{:?} decoded as {other:?}; it is not canonical",
                String::from_utf8_lossy(by_name)
            ),
        }
    }
}
