//! gobs against references it did not write: the Syrup README and draft specification
//! (github.com/ocapn/syrup), the Syrup repository's `test-data/zoo.bin`, and known answers
//! computed by Spritely Goblins 0.18 (`vectors/goblins.scm`, its output `vectors/goblins.txt`):
//! every Syrup kind, dictionary order, locators and URIs, session keys, side and session ids,
//! signatures (location and handoff), and the tcp-tls designator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use gobs_ocapn::captp::{CaptpError, KeyPair, PublicKey, session_id};
use gobs_ocapn::locator::{PeerLocator, Sturdyref};
use gobs_ocapn::netlayer::designator_of;
use gobs_ocapn::syrup::{self, SyrupError, Value};
use gobs_testkit::Need;

/// The Syrup repository's commit the README, draft specification and zoo.bin come from.
const SYRUP_COMMIT: &str = "ocapn/syrup@2214cbb7c0ee081699fdef64edbc2444af2bb1d2";

/// Goblins' answers, as committed: `name -> bytes`.
fn goblins() -> BTreeMap<&'static str, Vec<u8>> {
    parse_vectors(include_str!("vectors/goblins.txt"))
}

fn parse_vectors(text: &str) -> BTreeMap<&str, Vec<u8>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, hex) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("vector line without a space: {l:?}"));
            let bytes = data_encoding::HEXLOWER
                .decode(hex.as_bytes())
                .unwrap_or_else(|e| panic!("vector {name}: bad hex: {e}"));
            (name, bytes)
        })
        .collect()
}

fn vector<'a>(vectors: &'a BTreeMap<&str, Vec<u8>>, name: &str) -> &'a [u8] {
    vectors
        .get(name)
        .unwrap_or_else(|| panic!("vectors/goblins.txt has no {name}: rerun vectors/goblins.scm"))
}

fn sym(s: &str) -> Value {
    Value::symbol(s)
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn dict(pairs: Vec<(Value, Value)>) -> Value {
    Value::Dict(pairs)
}

/// `value` encodes to exactly `expected`, and `expected` decodes to `value`.
#[track_caller]
fn assert_both_ways(what: &str, value: &Value, expected: &[u8]) {
    assert_eq!(
        syrup::encode(value),
        expected,
        "{what}: gobs encodes {value:?} as {:?}, the reference as {:?}",
        String::from_utf8_lossy(&syrup::encode(value)),
        String::from_utf8_lossy(expected)
    );
    let decoded =
        syrup::decode(expected).unwrap_or_else(|e| panic!("{what}: gobs cannot decode it: {e}"));
    assert_eq!(decoded.kind(), value.kind(), "{what}");
    assert_eq!(&decoded, value, "{what}");
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
            Value::Record(
                Box::new("date".into()),
                vec![
                    2020.into(),
                    5.into(),
                    1.into(),
                    14.into(),
                    8.into(),
                    11.into(),
                ],
            ),
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
        (
            "record-string-label",
            Value::Record(
                Box::new("date".into()),
                vec![
                    2020.into(),
                    5.into(),
                    1.into(),
                    14.into(),
                    8.into(),
                    11.into(),
                ],
            ),
        ),
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

#[test]
fn locators_read_and_write_as_goblins_does() {
    let vectors = goblins();
    let text = |name| String::from_utf8(vector(&vectors, name).to_vec()).unwrap();
    let designator = "hz4g3bvtlcstzmqgeyjtdxoctr6nkrxbbvn5qh7ep2cz2kpcjuoq";

    // Goblins' <ocapn-peer>: read, and written back byte for byte (hints as Goblins wrote them).
    let peer_bytes = vector(&vectors, "locator:peer");
    let peer = PeerLocator::from_value(&syrup::decode(peer_bytes).unwrap()).unwrap();
    assert_eq!(peer.transport, "tcp-tls");
    assert_eq!(peer.designator, designator);
    assert_eq!(peer.hint("host"), Some("127.0.0.1"));
    assert_eq!(peer.hint("port"), Some("9045"));
    assert_eq!(syrup::encode(&peer.to_value()), peer_bytes);

    // Goblins' peer URI names the same peer with the same hints.
    let from_uri = PeerLocator::parse(&text("locator:peer-uri")).unwrap();
    assert_eq!(from_uri, peer);
    assert_eq!(
        (from_uri.hint("host"), from_uri.hint("port")),
        (Some("127.0.0.1"), Some("9045"))
    );

    // The sturdyref, as a record and as a URI (base64url, no padding, `-` and `_` in it).
    let sref_bytes = vector(&vectors, "locator:sturdyref");
    let sref = Sturdyref::from_value(&syrup::decode(sref_bytes).unwrap()).unwrap();
    assert_eq!(sref.peer, peer);
    assert_eq!(sref.swiss, [251, 239, 190, 255, 0, 1, 2]);
    assert_eq!(syrup::encode(&sref.to_value()), sref_bytes);
    let sref_uri = text("locator:sturdyref-uri");
    assert!(sref_uri.contains("/s/----_wABAg?"), "{sref_uri}");
    assert_eq!(Sturdyref::parse(&sref_uri).unwrap(), sref);
    // gobs' URI may order the hints differently; it must mean the same sturdyref.
    assert_eq!(Sturdyref::parse(&sref.to_uri()).unwrap(), sref);

    // A URI written by hand becomes, in gobs, the record Goblins makes of it: string hint
    // keys, the swiss number as bytes.
    let hand = Sturdyref::parse(&text("locator:hand-written-uri")).unwrap();
    assert_both_ways(
        "Goblins' record for a hand-written sturdyref URI",
        &hand.to_value(),
        vector(&vectors, "locator:hand-written-sturdyref"),
    );
}

struct Keys {
    a: KeyPair,
    b: KeyPair,
}

fn goblins_keys(vectors: &BTreeMap<&str, Vec<u8>>) -> Keys {
    let seed = |name| -> [u8; 32] { vector(vectors, name).try_into().unwrap() };
    Keys {
        a: KeyPair::from_seed(&seed("key:a-seed")),
        b: KeyPair::from_seed(&seed("key:b-seed")),
    }
}

#[test]
fn session_keys_and_ids_are_the_ones_goblins_computes() {
    let vectors = goblins();
    let keys = goblins_keys(&vectors);
    for (side, pair) in [("a", &keys.a), ("b", &keys.b)] {
        // The public key's gcrypt-style form, from the same seed.
        let goblins_public = vector(&vectors, &format!("key:{side}-public"));
        assert_both_ways(
            &format!("public key {side}"),
            &pair.public().to_value(),
            goblins_public,
        );
        let read = PublicKey::from_value(&syrup::decode(goblins_public).unwrap()).unwrap();
        assert_eq!(read, pair.public());
        // The side id (the spec's Public Identifier) a Goblins coordinator gives it.
        assert_eq!(
            pair.public().side_id(),
            vector(&vectors, &format!("session:{side}-side-id")),
            "side id of {side}"
        );
    }
    // The session id, as each of the two coordinators computed it, in either argument order.
    for at in ["session:id-at-a", "session:id-at-b"] {
        assert_eq!(
            session_id(&keys.a.public(), &keys.b.public()),
            vector(&vectors, at),
            "{at}"
        );
        assert_eq!(
            session_id(&keys.b.public(), &keys.a.public()),
            vector(&vectors, at),
            "{at}"
        );
    }
}

#[test]
fn location_signature_is_the_one_goblins_makes() {
    let vectors = goblins();
    let keys = goblins_keys(&vectors);
    // What op:start-session carries: a's signature over <my-location peer>.
    let peer = syrup::decode(vector(&vectors, "locator:peer")).unwrap();
    let signed = Value::record("my-location", vec![peer]);
    let goblins_sig = syrup::decode(vector(&vectors, "session:a-location-sig")).unwrap();
    // Ed25519 is deterministic: the same key signs the same bytes identically.
    assert_both_ways(
        "location signature",
        &keys.a.sign_value(&signed),
        vector(&vectors, "session:a-location-sig"),
    );
    keys.a.public().verify_value(&signed, &goblins_sig).unwrap();
    assert_eq!(
        keys.b.public().verify_value(&signed, &goblins_sig),
        Err(CaptpError::BadSignature),
        "b's key accepted a's signature"
    );
    let other = Value::record("my-location", vec!["elsewhere".into()]);
    assert_eq!(
        keys.a.public().verify_value(&other, &goblins_sig),
        Err(CaptpError::BadSignature),
        "the signature checked over another location"
    );
}

#[test]
fn handoff_certificate_signature_is_the_one_goblins_makes() {
    let vectors = goblins();
    let keys = goblins_keys(&vectors);
    let envelope = syrup::decode(vector(&vectors, "handoff:give-envelope")).unwrap();
    let (label, fields) = envelope.as_record().unwrap();
    assert_eq!(label, "desc:sig-envelope");
    let [give, sig] = fields else {
        panic!("desc:sig-envelope with {} fields", fields.len())
    };
    let (label, give_fields) = give.as_record().unwrap();
    assert_eq!(label, "desc:handoff-give");
    let [receiver_key, exporter, session, gifter_side, gift_id] = give_fields else {
        panic!("desc:handoff-give with {} fields", give_fields.len())
    };
    // The fields are what gobs computes for the same keys and peer.
    assert_eq!(receiver_key, &keys.b.public().to_value());
    assert_eq!(
        PeerLocator::from_value(exporter).unwrap(),
        PeerLocator::from_value(&syrup::decode(vector(&vectors, "locator:peer")).unwrap()).unwrap()
    );
    let session_bytes = session_id(&keys.a.public(), &keys.b.public());
    assert_eq!(session.as_bytes(), Some(&session_bytes[..]));
    assert_eq!(gifter_side.as_bytes(), Some(&keys.a.public().side_id()[..]));
    assert_eq!(gift_id.as_bytes().map(<[u8]>::len), Some(32));
    // gobs checks Goblins' signature, and signs the certificate identically.
    keys.a.public().verify_value(give, sig).unwrap();
    assert_eq!(&keys.a.sign_value(give), sig);
    assert_eq!(
        keys.b.public().verify_value(give, sig),
        Err(CaptpError::BadSignature)
    );
}

#[test]
fn tcp_tls_designator_is_the_one_goblins_announces() {
    let vectors = goblins();
    let pem = include_bytes!("vectors/goblins-tls-cert.pem");
    let designator = String::from_utf8(vector(&vectors, "tcp-tls:designator").to_vec()).unwrap();
    assert_eq!(designator_of(pem), designator);
}

/// Reruns `vectors/goblins.scm` and compares with the committed vectors, so they cannot rot.
#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: run shared/tools/goblins/install.sh as root, then set GOBS_REQUIRE_PRIVILEGED=1 (CI sets CI)"
)]
fn goblins_still_computes_the_committed_vectors() {
    gobs_testkit::need(&[Need::Goblins]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/goblins.scm");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". /opt/goblins/env.sh && exec guile --no-auto-compile '{script}'"
        ))
        .env("GUILE_WARN_DEPRECATED", "no")
        .output()
        .expect("cannot run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed: {stderr}");
    let now = String::from_utf8(out.stdout).expect("the script wrote non-UTF-8");
    let committed = include_str!("vectors/goblins.txt");
    let (now_v, committed_v) = (parse_vectors(&now), parse_vectors(committed));
    let differ: std::collections::BTreeSet<&&str> = now_v
        .keys()
        .chain(committed_v.keys())
        .filter(|k| now_v.get(*k) != committed_v.get(*k))
        .collect();
    assert!(
        differ.is_empty() && now == committed,
        "Goblins now computes other vectors than vectors/goblins.txt holds ({differ:?}); \
         see the script's header to regenerate, and find out why they changed"
    );
}
