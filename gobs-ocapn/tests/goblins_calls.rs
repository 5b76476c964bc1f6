//! gobs on default settings and a real Goblins 0.18, in separate processes over tcp-tls on
//! 127.0.0.1: values, errors, references passed and called back, pipelining and promises,
//! both directions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "goblins/harness.rs"]
mod harness;

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::{self, Value};
use gobs_testkit::Need;
use harness::{Reply, blocking, goblins_and_gobs, msg, runtime};

/// Every kind of Syrup datum Goblins 0.18 round-trips (single floats are left out: Goblins
/// 0.18 decodes `F` as an 8-byte double and fails).
fn every_syrup_type() -> Vec<Value> {
    vec![
        Value::Bool(true),
        Value::Bool(false),
        Value::from(0u8),
        Value::from(-42i64),
        Value::from(u64::MAX),
        Value::Int(1 << 70),
        Value::Int(-(1 << 100)),
        Value::F64(1.5),
        Value::F64(-0.0),
        Value::from(&b"\x00\xffbytes"[..]),
        Value::from("a string, ünïcode"),
        Value::from(""),
        Value::symbol("a-symbol"),
        Value::List(vec![
            Value::from(1u8),
            Value::from("two"),
            Value::symbol("three"),
        ]),
        Value::List(vec![]),
        Value::Dict(vec![
            (Value::from("name"), Value::from("goblin")),
            (Value::from("age"), Value::from(7u8)),
        ]),
        Value::Set(vec![Value::from(3u8), Value::from(1u8), Value::from(2u8)]),
        Value::record("point", vec![Value::from(1u8), Value::from(-2i8)]),
        Value::record(
            "nested",
            vec![Value::List(vec![Value::Dict(vec![(
                Value::from("k"),
                Value::Set(vec![Value::symbol("s")]),
            )])])],
        ),
    ]
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn every_syrup_type_crosses_both_ways_as_goblins_encodes_it() {
    gobs_testkit::need(&[Need::Goblins]);
    runtime().block_on(async {
        let (mut goblins, gobs) = goblins_and_gobs().await;
        let echo = goblins.sturdyref("echo");
        for v in every_syrup_type() {
            // gobs -> Goblins -> gobs.
            let back = gobs
                .call(&echo, msg("echo", &[Term::from_value(v.clone())]))
                .await
                .unwrap_or_else(|e| panic!("Goblins' echo broke on {v:?}: {e:?}"));
            assert_eq!(
                back.to_value(),
                Some(v.clone()),
                "gobs -> Goblins echo of {v:?}"
            );
            // Goblins -> gobs -> Goblins: Goblins' own encoder writes what gobs writes.
            let uri = gobs.uri();
            let bytes = blocking(|| goblins.call_bytes(&uri, "echo", std::slice::from_ref(&v)));
            assert_eq!(
                syrup::encode(&v),
                bytes,
                "Goblins' encoding of {v:?} echoed by gobs differs from gobs' own"
            );
        }
    });
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn errors_cross_both_ways() {
    gobs_testkit::need(&[Need::Goblins]);
    runtime().block_on(async {
        let (mut goblins, gobs) = goblins_and_gobs().await;
        // Goblins -> gobs: the method's error arrives as gobs broke the promise.
        let uri = gobs.uri();
        let reply = blocking(|| goblins.call(&uri, "fail", &[Value::from("no fuel")]));
        assert_eq!(reply, Reply::Err(Value::from("no fuel")));
        // gobs -> Goblins: Goblins gives no details.
        let thrower = goblins.sturdyref("thrower");
        let err = gobs
            .call(&thrower, msg("fail", &[Term::str("secret")]))
            .await
            .expect_err("Goblins' thrower throws");
        assert_eq!(
            err.to_value(),
            Some(Value::record("exn:fail:mystery", vec![]))
        );
        // An unknown method on either side breaks the promise, and the session lives on.
        let reply = blocking(|| goblins.call(&uri, "no-such-method", &[]));
        assert!(matches!(reply, Reply::Err(_)), "{reply:?}");
        let echo = goblins.sturdyref("echo");
        let v = gobs
            .call(&echo, msg("echo", &[Term::str("still here")]))
            .await;
        assert_eq!(v, Ok(Term::str("still here")));
    });
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn references_passed_both_ways_are_called_back() {
    gobs_testkit::need(&[Need::Goblins]);
    runtime().block_on(async {
        let (mut goblins, gobs) = goblins_and_gobs().await;
        // Goblins passes one of its objects to gobs, which calls it back.
        let uri = gobs.uri();
        let id = blocking(|| goblins.send("callback", &[&uri, "call-me"]));
        let reply = blocking(|| goblins.outcome(&id));
        assert_eq!(reply, Reply::Ok(Value::from("called back")));
        // gobs passes one of its objects to Goblins, which calls it back.
        let mine = gobs
            .core(|core| Term::local(core.spawn(Box::new(harness::GobsObject::default()))))
            .await;
        let caller = goblins.sturdyref("caller");
        let v = gobs
            .call(
                &caller,
                msg(
                    "call-back",
                    &[mine, Term::sym("echo"), Term::str("to gobs")],
                ),
            )
            .await;
        assert_eq!(v, Ok(Term::str("to gobs")));
    });
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn pipelining_both_ways() {
    gobs_testkit::need(&[Need::Goblins]);
    runtime().block_on(async {
        let (mut goblins, gobs) = goblins_and_gobs().await;
        // gobs -> Goblins: `make` answers a new object; `echo` goes to the answer before it
        // is known (desc:answer on the wire).
        let counter = goblins.sturdyref("counter");
        let p = gobs
            .core(move |core| {
                let target = core.enliven(&counter);
                let made = core.send(gobs_ocapn::captp::CapRef::Local(target), msg("make", &[]));
                core.send(
                    gobs_ocapn::captp::CapRef::Local(made),
                    msg("echo", &[Term::str("pipelined")]),
                )
            })
            .await;
        assert_eq!(gobs.settled(p).await, Ok(Term::str("pipelined")));
        // Goblins -> gobs: `make` answers a new gobs object; Goblins sends `echo` to it
        // before the answer arrives.
        let uri = gobs.uri();
        let id = blocking(|| {
            goblins.send(
                "pipeline",
                &[
                    &uri,
                    "make",
                    &harness::args_hex(&[]),
                    "echo",
                    &harness::args_hex(&[Value::from("pipelined")]),
                ],
            )
        });
        let reply = blocking(|| goblins.outcome(&id));
        assert_eq!(reply, Reply::Ok(Value::from("pipelined")));
    });
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs Goblins 0.18 in /opt/goblins: bash shared/tools/goblins/install.sh (CI does)"
)]
fn a_gobs_method_answers_with_a_goblins_promise() {
    gobs_testkit::need(&[Need::Goblins]);
    runtime().block_on(async {
        let (mut goblins, gobs) = goblins_and_gobs().await;
        let uri = gobs.uri();
        // Goblins passes an unresolved promise; gobs answers with it, so gobs must listen
        // (op:listen, three fields) and pass on what Goblins settles it to.
        let id = blocking(|| goblins.send("relay", &[&uri, "relay"]));
        assert_eq!(blocking(|| goblins.expect(&id)), vec!["relayed"]);
        let value = harness::hex(&syrup::encode(&Value::symbol("settled-later")));
        let settle = blocking(|| goblins.send("settle", &[&id, &value]));
        assert_eq!(
            blocking(|| goblins.outcome(&settle)),
            Reply::Ok(Value::Bool(true))
        );
        let reply = blocking(|| goblins.outcome(&id));
        assert_eq!(reply, Reply::Ok(Value::symbol("settled-later")));
    });
}
