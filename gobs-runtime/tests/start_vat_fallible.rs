//! `Registry::try_start_vat`: roots that fail to build on the first start give an error
//! naming the vat and the cause (no panic), leave nothing saved, and the next start
//! builds the vat anew.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::actor_lib::Cell;
use gobs_runtime::{Ref, Registry, StoreKind, Value, common_env, persistence_env, spawn};

fn registry(dir: &std::path::Path) -> Registry {
    let env = persistence_env!("fallible", extends: [common_env()], actors: []).unwrap();
    Registry::open(dir, env, StoreKind::Log(Default::default())).unwrap()
}

#[test]
fn roots_that_fail_on_first_start_are_an_error_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path());
    let config = dir.path().join("missing.conf");
    let err = registry
        .try_start_vat("app", move || -> Result<Ref<Cell>, std::io::Error> {
            let text = std::fs::read_to_string(&config)?;
            Ok(spawn(Cell::new(Value::Str(text))))
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("vat \"app\""), "{err}");
    assert!(err.contains("No such file"), "{err}");
    assert!(registry.vat("app").is_none(), "the vat does not run");
    registry.shutdown();
    drop(registry);

    let registry = self::registry(dir.path());
    assert!(
        !registry.vat_names().contains(&"app".to_owned()),
        "nothing saved"
    );
    let (_, cell) = registry
        .try_start_vat("app", || {
            Ok::<_, std::io::Error>(spawn(Cell::new(Value::Str("fresh".to_owned()))))
        })
        .unwrap();
    assert_eq!(
        cell.send().get().wait().unwrap(),
        Value::Str("fresh".to_owned())
    );
    registry.shutdown();
}
