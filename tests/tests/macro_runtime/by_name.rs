//! Calls by name, as a command line or a network peer makes them: arguments and results in
//! MessagePack, the errors of an unknown method or bad arguments, and a method's error rolling
//! its turn back.

use super::*;

#[test]
fn read_and_write_calls_decode_and_encode() {
    let vat = Vat::spawn("by-name").unwrap();
    let acc = account(&vat, 10);
    let out = acc
        .invoke("deposit", args(&(5u64, "pay".to_string())))
        .wait()
        .unwrap();
    let () = decode(&out);
    assert_eq!(
        decode::<u64>(&acc.invoke("balance", args(&())).wait().unwrap()),
        15
    );
    // No bytes at all is also an empty argument list.
    assert_eq!(
        decode::<u64>(&acc.invoke("total", Vec::new()).wait().unwrap()),
        15
    );
    let (text, lines): (String, Vec<String>) = decode(
        &acc.invoke("summary", args(&("= ".to_string(), 5u32)))
            .wait()
            .unwrap(),
    );
    assert_eq!((text.as_str(), lines), ("= 15", vec!["pay".to_string()]));
    // Through an `AnyRef`, as a capability table would hold it.
    let any = Value::from(acc.clone());
    let Value::Ref(any) = any else { unreachable!() };
    let ok: bool = decode(&any.invoke("check", args(&(100u64,))).wait().unwrap());
    assert!(ok);
    vat.shutdown();
}

#[test]
fn unknown_method_lists_the_methods() {
    let vat = Vat::spawn("unknown").unwrap();
    let acc = account(&vat, 0);
    let err = acc.invoke("witdraw", args(&(1u64,))).wait().unwrap_err();
    assert!(matches!(err, Error::Dispatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("no method `witdraw`"), "{msg}");
    assert!(msg.contains("withdraw(amount: u64)"), "{msg}");
    assert!(msg.contains("deposit(amount: u64, memo: String)"), "{msg}");
    assert!(msg.contains("Account#"), "{msg}");
    // Local and private methods are not callable by name, and not listed.
    for hidden in ["reset", "private_total"] {
        let err = acc.invoke(hidden, args(&())).wait().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("no method `{hidden}`")), "{msg}");
        assert!(!msg.contains(&format!("{hidden}(")), "{msg}");
    }
    let names: Vec<&str> = acc.methods().iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        [
            "balance", "deposit", "withdraw", "check", "summary", "lines", "require", "total"
        ]
    );
    // An actor without messages says so.
    let unit = vat.spawn_actor(Unit).unwrap();
    let msg = unit.invoke("x", Vec::new()).wait().unwrap_err().to_string();
    assert!(msg.contains("no methods callable by name"), "{msg}");
    vat.shutdown();
}

#[test]
fn bad_arguments_say_what_was_expected() {
    let vat = Vat::spawn("bad-args").unwrap();
    let acc = account(&vat, 3);
    // Wrong count.
    let msg = acc
        .invoke("deposit", args(&(5u64,)))
        .wait()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bad arguments for `deposit(amount: u64, memo: String)`"),
        "{msg}"
    );
    assert!(msg.contains("got 1 arguments, expected 2"), "{msg}");
    // Wrong type.
    let msg = acc
        .invoke("deposit", args(&("five", "memo")))
        .wait()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("bad arguments for `deposit("), "{msg}");
    // Not a list.
    let msg = acc
        .invoke("withdraw", args(&5u64))
        .wait()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("arguments are not a list"), "{msg}");
    // Arguments to a method that takes none.
    let msg = acc
        .invoke("balance", args(&(1u8,)))
        .wait()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("got 1 arguments, expected 0"), "{msg}");
    // None of it reached the actor.
    assert_eq!(balance(&acc), 3);
    vat.shutdown();
}

#[test]
fn trailing_options_may_be_left_out_and_nothing_else() {
    let vat = Vat::spawn("optional-args").unwrap();
    let acc = account(&vat, 3);
    for memo in ["a", "b"] {
        acc.invoke("deposit", args(&(1u64, memo))).wait().unwrap();
    }
    let all: Vec<String> = decode(&acc.invoke("lines", args(&("-",))).wait().unwrap());
    assert_eq!(all, ["-a", "-b"]);
    let one: Vec<String> = decode(&acc.invoke("lines", args(&("-", 1u32))).wait().unwrap());
    assert_eq!(one, ["-a"]);
    // A parameter that is not an `Option` cannot be left out.
    let msg = acc
        .invoke("lines", args(&()))
        .wait()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("got 0 arguments, expected 2"), "{msg}");
    assert!(msg.contains("only trailing `Option` parameters"), "{msg}");
    vat.shutdown();
}

#[test]
fn err_fails_the_turn_and_rolls_back() {
    let vat = Vat::spawn("by-name-err").unwrap();
    let acc = account(&vat, 3);
    let err = acc.invoke("withdraw", args(&(10u64,))).wait().unwrap_err();
    assert!(matches!(err, Error::Actor { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot withdraw 10"), "{err}");
    // The log line pushed before the `Err` is gone with the rest of the turn.
    let (_, lines): (String, Vec<String>) = decode(
        &acc.invoke("summary", args(&(String::new(), 10u32)))
            .wait()
            .unwrap(),
    );
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(balance(&acc), 3);
    // A successful withdrawal does stick.
    let left: u64 = decode(&acc.invoke("withdraw", args(&(1u64,))).wait().unwrap());
    assert_eq!(left, 2);
    vat.shutdown();
}
