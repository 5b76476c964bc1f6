//! The outside references gobs-ocapn's tests check against, in this folder: known answers
//! Goblins 0.18 computed (`goblins.scm` wrote `goblins.txt`), the Syrup repository's
//! `syrup-zoo.bin`, and a certificate Goblins made (`goblins-tls-*.pem`); and the helpers
//! that read them.
#![allow(dead_code)]

use std::collections::BTreeMap;

use gobs_ocapn::syrup::{self, Value};

/// The Syrup repository's commit the README, draft specification and zoo.bin come from.
pub const SYRUP_COMMIT: &str = "ocapn/syrup@2214cbb7c0ee081699fdef64edbc2444af2bb1d2";

/// Goblins' answers, as committed: `name -> bytes`.
pub fn goblins() -> BTreeMap<&'static str, Vec<u8>> {
    parse_vectors(include_str!("goblins.txt"))
}

pub fn parse_vectors(text: &str) -> BTreeMap<&str, Vec<u8>> {
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

pub fn vector<'a>(vectors: &'a BTreeMap<&str, Vec<u8>>, name: &str) -> &'a [u8] {
    vectors
        .get(name)
        .unwrap_or_else(|| panic!("vectors/goblins.txt has no {name}: rerun vectors/goblins.scm"))
}

/// `value` encodes to exactly `expected`, and `expected` decodes to `value`.
#[track_caller]
pub fn assert_both_ways(what: &str, value: &Value, expected: &[u8]) {
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
