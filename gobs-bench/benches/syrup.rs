//! Syrup encode/decode of a representative CapTP message (an `op:deliver` with a method
//! symbol, a string, an integer, 32 bytes and three references, an answer position and a
//! resolver), against the `ocapn-syrup` crate on the same message and rmp-serde on the
//! same data as a serde struct; a ratio table follows criterion's timings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::Criterion;
use gobs_bench::per_op;
use gobs_ocapn::syrup::{self, Value};
use serde::{Deserialize, Serialize};

fn message() -> Value {
    let desc = |label: &str, p: u64| Value::record(label, vec![Value::from(p)]);
    Value::record(
        "op:deliver",
        vec![
            desc("desc:export", 17),
            Value::List(vec![
                Value::symbol("register-machine"),
                Value::from("hob-client on host-42"),
                Value::from(1_700_000_000u64),
                Value::Bytes(vec![0xab; 32]),
                Value::List(vec![
                    desc("desc:import-object", 3),
                    desc("desc:import-object", 4),
                    desc("desc:import-promise", 5),
                ]),
            ]),
            Value::from(9u64),
            desc("desc:import-object", 12),
        ],
    )
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Desc {
    Export(u64),
    ImportObject(u64),
    ImportPromise(u64),
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Deliver {
    to: Desc,
    method: String,
    host: String,
    time: u64,
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    refs: Vec<Desc>,
    answer_pos: Option<u64>,
    resolve_me: Desc,
}

fn data() -> Deliver {
    Deliver {
        to: Desc::Export(17),
        method: "register-machine".into(),
        host: "hob-client on host-42".into(),
        time: 1_700_000_000,
        key: vec![0xab; 32],
        refs: vec![
            Desc::ImportObject(3),
            Desc::ImportObject(4),
            Desc::ImportPromise(5),
        ],
        answer_pos: Some(9),
        resolve_me: Desc::ImportObject(12),
    }
}

fn theirs(v: &Value) -> ocapn_syrup::Value {
    use ocapn_syrup::Value as O;
    match v {
        Value::Bool(b) => O::boolean(*b),
        Value::Int(i) => O::integer(*i),
        Value::F32(x) => O::float(*x),
        Value::F64(x) => O::double(*x),
        Value::Bytes(b) => O::binary(b.as_slice()),
        Value::String(s) => O::string(s.as_str()),
        Value::Symbol(s) => O::symbol(s.as_str()),
        Value::List(l) => O::sequence(l.iter().map(theirs).collect()),
        Value::Dict(d) => O::dictionary(d.iter().map(|(k, v)| (theirs(k), theirs(v))).collect()),
        Value::Set(s) => O::set(s.iter().map(theirs).collect()),
        Value::Record(l, a) => O::record(theirs(l), a.iter().map(theirs).collect()),
    }
}

fn bench(c: &mut Criterion) {
    let msg = message();
    let bytes = syrup::encode(&msg);
    let other = theirs(&msg);
    assert_eq!(
        other.to_vec(),
        bytes,
        "both crates write the same canonical bytes"
    );
    let d = data();
    let rmp = rmp_serde::to_vec(&d).unwrap();
    let serde_syrup = syrup::to_bytes(&d).unwrap();

    let mut g = c.benchmark_group("encode");
    g.bench_function("gobs-ocapn Value", |b| {
        b.iter(|| syrup::encode(black_box(&msg)))
    });
    g.bench_function("ocapn-syrup Value", |b| {
        b.iter(|| black_box(&other).to_vec())
    });
    g.bench_function("gobs-ocapn serde struct", |b| {
        b.iter(|| syrup::to_bytes(black_box(&d)).unwrap())
    });
    g.bench_function("rmp-serde struct", |b| {
        b.iter(|| rmp_serde::to_vec(black_box(&d)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.bench_function("gobs-ocapn Value", |b| {
        b.iter(|| syrup::decode(black_box(&bytes)).unwrap())
    });
    g.bench_function("ocapn-syrup Value", |b| {
        b.iter(|| ocapn_syrup::parse_value(black_box(&bytes)).unwrap())
    });
    g.bench_function("gobs-ocapn serde struct", |b| {
        b.iter(|| syrup::from_bytes::<Deliver>(black_box(&serde_syrup)).unwrap())
    });
    g.bench_function("rmp-serde struct", |b| {
        b.iter(|| rmp_serde::from_slice::<Deliver>(black_box(&rmp)).unwrap())
    });
    g.finish();
}

/// Every pair measured again, back to back in this run: gobs-ocapn and its peer.
fn ratios() {
    let msg = message();
    let bytes = syrup::encode(&msg);
    let other = theirs(&msg);
    let d = data();
    let rmp = rmp_serde::to_vec(&d).unwrap();
    let serde_syrup = syrup::to_bytes(&d).unwrap();
    let n = 50_000;
    let rows = [
        (
            "encode, Value vs ocapn-syrup",
            per_op(n, || drop(black_box(syrup::encode(black_box(&msg))))),
            per_op(n, || drop(black_box(black_box(&other).to_vec()))),
        ),
        (
            "decode, Value vs ocapn-syrup",
            per_op(n, || drop(black_box(syrup::decode(black_box(&bytes))))),
            per_op(n, || {
                drop(black_box(ocapn_syrup::parse_value(black_box(&bytes))))
            }),
        ),
        (
            "encode, serde struct vs rmp-serde",
            per_op(n, || drop(black_box(syrup::to_bytes(black_box(&d))))),
            per_op(n, || drop(black_box(rmp_serde::to_vec(black_box(&d))))),
        ),
        (
            "decode, serde struct vs rmp-serde",
            per_op(n, || {
                drop(black_box(syrup::from_bytes::<Deliver>(black_box(
                    &serde_syrup,
                ))))
            }),
            per_op(n, || {
                drop(black_box(rmp_serde::from_slice::<Deliver>(black_box(&rmp))))
            }),
        ),
    ];
    println!("\n| representative CapTP message | gobs-ocapn | peer | peer / gobs-ocapn |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, ours, theirs) in rows {
        println!(
            "| {name} | {:.0} ns | {:.0} ns | {:.2}× |",
            ours.as_secs_f64() * 1e9,
            theirs.as_secs_f64() * 1e9,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    // Only when benchmarks really run (not under `cargo bench --no-run`, `--list` or `--test`).
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        ratios();
    }
}
