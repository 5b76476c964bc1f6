//! Syrup's own kinds reach by-name methods of a gobs actor from a real Goblins 0.18
//! (separate process, tcp-tls on 127.0.0.1): symbols, integers beyond 64 bits and records,
//! each answer compared with the bytes Goblins' own encoder writes for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "goblins/harness.rs"]
mod harness;

use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::syrup::{self, Value};
use gobs_ocapn::vat::{BigInt, Record, Symbol, export_actor};
use gobs_runtime::{Vat, define_actor};
use gobs_testkit::Need;
use harness::{Reply, blocking, goblins_and_gobs, runtime};

#[define_actor]
pub struct Shapes {
    calls: u64,
}

#[define_actor]
impl Shapes {
    pub fn shout(&mut self, s: Symbol) -> Symbol {
        self.calls += 1;
        Symbol::new(s.as_str().to_uppercase())
    }

    pub fn double(&mut self, n: BigInt) -> BigInt {
        self.calls += 1;
        BigInt(n.0 * 2)
    }

    pub fn swap(&mut self, r: Record<(i64, i64)>) -> Record<(i64, i64)> {
        self.calls += 1;
        Record {
            label: r.label,
            fields: (r.fields.1, r.fields.0),
        }
    }

    pub fn greet(&mut self, name: String) -> String {
        self.calls += 1;
        format!("hello {name}")
    }
}

const SHAPES_SWISS: &[u8] = b"gobs-interop-shapes-actor-swiss1";

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn symbols_wide_integers_and_records_reach_by_name_methods_from_goblins() {
    gobs_testkit::need(&[Need::Goblins]);
    runtime().block_on(async {
        let (mut goblins, gobs) = goblins_and_gobs().await;
        let vat = Vat::spawn("shapes").unwrap();
        let shapes = vat.spawn_actor(Shapes { calls: 0 }).unwrap();
        let Term::Ref(CapRef::Local(obj)) = export_actor(&gobs.node, shapes).await.unwrap() else {
            panic!("an exported actor is a local reference")
        };
        gobs.core(move |core| core.bind_swiss(SHAPES_SWISS, obj))
            .await;
        let uri = gobs_ocapn::locator::Sturdyref {
            peer: gobs.node.locator().clone(),
            swiss: SHAPES_SWISS.to_vec(),
        }
        .to_uri();
        let cases = [
            (
                "shout",
                Value::symbol("quiet"),
                Value::symbol("QUIET"),
                &b"5'QUIET"[..],
            ),
            (
                "double",
                Value::Int(1 << 70),
                Value::Int(1 << 71),
                &b"2361183241434822606848+"[..],
            ),
            (
                "double",
                Value::Int(-(1 << 100)),
                Value::Int(-(1 << 101)),
                &b"2535301200456458802993406410752-"[..],
            ),
            (
                "swap",
                Value::record("point", vec![Value::from(1u8), Value::from(-2i8)]),
                Value::record("point", vec![Value::from(-2i8), Value::from(1u8)]),
                &b"<5'point2-1+>"[..],
            ),
            // A symbol given to a String parameter arrives as its name.
            (
                "greet",
                Value::symbol("goblin"),
                Value::from("hello goblin"),
                &b"12\"hello goblin"[..],
            ),
        ];
        for (method, arg, answer, golden) in cases {
            let bytes = blocking(|| goblins.call_bytes(&uri, method, std::slice::from_ref(&arg)));
            assert_eq!(bytes, golden, "Goblins' encoding of the answer to {method}");
            assert_eq!(syrup::decode(&bytes).unwrap(), answer, "{method}");
            assert_eq!(
                syrup::encode(&answer),
                golden,
                "gobs' encoding of {answer:?}"
            );
        }
        // A record where a symbol is expected: a clear error, not a wrong value.
        let reply = blocking(|| {
            goblins.call(
                &uri,
                "shout",
                &[Value::record("point", vec![Value::from(1u8)])],
            )
        });
        let Reply::Err(e) = reply else {
            panic!("a record given to a Symbol parameter breaks the promise: {reply:?}")
        };
        let text = format!("{e:?}");
        assert!(
            text.contains("bad-call") && text.contains("shout"),
            "{text}"
        );
        vat.shutdown();
    });
}
