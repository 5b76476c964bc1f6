//! `Registry::start_vat` and `try_start_vat` take roots closures that borrow the caller's
//! locals (they run on the vat's thread while the caller waits): a config read before,
//! a counter the closure bumps. On a restore the closure is not called; a closure that
//! fails or panics is an error, the borrow has ended when the call returns, and the
//! vat is stopped by then (the next start of that name builds it anew, at once).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use gobs_runtime::actor_lib::Cell;
use gobs_runtime::{Ref, Registry, StoreKind, Value, common_env, persistence_env, spawn};

fn registry(dir: &std::path::Path) -> Registry {
    let env = persistence_env!("borrows", extends: [common_env()], actors: []).unwrap();
    Registry::open(dir, env, StoreKind::Log(Default::default())).unwrap()
}

#[test]
fn roots_borrow_the_callers_locals_and_run_only_on_the_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let greeting = String::from("hello from the caller's stack");
    let mut built = 0;
    let registry = registry(dir.path());
    let (_, cell) = registry
        .start_vat("app", || {
            built += 1;
            spawn(Cell::new(Value::Str(greeting.clone())))
        })
        .unwrap();
    assert_eq!(built, 1);
    assert_eq!(
        cell.send().get().wait().unwrap(),
        Value::Str(greeting.clone())
    );
    registry.shutdown();
    drop(registry);

    let registry = self::registry(dir.path());
    let (_, cell): (_, Ref<Cell>) = registry
        .start_vat("app", || {
            built += 1;
            spawn(Cell::new(Value::Str("not this".into())))
        })
        .unwrap();
    assert_eq!(built, 1, "restored: the roots closure was not called");
    assert_eq!(cell.send().get().wait().unwrap(), Value::Str(greeting));
    registry.shutdown();
}

#[test]
fn fallible_roots_borrow_too() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let missing = dir.path().join("missing.conf");
    let err = registry
        .try_start_vat("app", || -> Result<Ref<Cell>, std::io::Error> {
            let text = std::fs::read_to_string(&missing)?;
            Ok(spawn(Cell::new(Value::Str(text))))
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("No such file"), "{err}");
    // `missing` is still the caller's.
    std::fs::write(&missing, "port = 7000").unwrap();
    let (_, cell) = registry
        .try_start_vat("app", || -> Result<Ref<Cell>, std::io::Error> {
            let text = std::fs::read_to_string(&missing)?;
            Ok(spawn(Cell::new(Value::Str(text))))
        })
        .unwrap();
    assert_eq!(
        cell.send().get().wait().unwrap(),
        Value::Str("port = 7000".into())
    );
    registry.shutdown();
}

#[test]
fn a_panicking_roots_closure_is_an_error_and_its_borrow_has_ended() {
    let registry = Registry::in_memory(common_env());
    let seen = Mutex::new(Vec::new());
    let result = registry.start_vat("app", || -> Ref<Cell> {
        seen.lock().unwrap().push("called");
        panic!("no roots today")
    });
    let err = result.expect_err("a panicking roots closure is an error");
    assert!(err.to_string().contains("no roots today"), "{err}");
    // The closure is gone: its borrow of `seen` has ended, so `seen` can be moved.
    assert_eq!(seen.into_inner().unwrap(), vec!["called"]);
    // The vat without roots is not left running: the next start builds it.
    let (_, cell) = registry
        .start_vat("app", || spawn(Cell::new(Value::Int(1))))
        .unwrap();
    assert_eq!(cell.send().get().wait().unwrap(), Value::Int(1));
    registry.shutdown();
}
