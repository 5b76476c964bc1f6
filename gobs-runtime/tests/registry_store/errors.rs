//! A registry store's failures, each with an error that names what happened and what to do: a
//! damaged or vanished store, another kind, a root of another type, a newer portrait, a torn
//! tail, a second process.

use super::*;

#[test]
fn a_damaged_vat_is_reported_and_the_rest_works() {
    let dir = tempfile::tempdir().unwrap();
    let kind = StoreKind::Sqlite(Durability::EveryCommit);
    let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
    populate(&registry);
    registry.shutdown();
    drop(registry);
    // Damage c1: its counter's portrait names a type no env has.
    let db = rusqlite::Connection::open(dir.path().join("registry.sqlite")).unwrap();
    let changed = db
        .execute(
            "UPDATE actors SET type = (SELECT max(id) + 1 FROM types) \
             WHERE vat = (SELECT id FROM vats WHERE name = 'c1')",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    let registry = Registry::open(dir.path(), env(), kind).unwrap();
    let (_, spawner): (_, Ref<Spawner>) = registry.restore_vat("spawner").unwrap();
    let c2 = spawner.send().counter("c2".into()).wait().unwrap().unwrap();
    assert_eq!(c2.send().increment().wait().unwrap(), 2);
    let c1 = spawner.send().counter("c1".into()).wait().unwrap().unwrap();
    assert!(c1.send().increment().wait().is_err());
    let reason = registry.broken_reason("c1").expect("c1 is reported broken");
    assert!(reason.contains("types table lacks"), "{reason}");
    let err = registry.restore_vat::<Ref<Counter>>("c1").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot be restored") && msg.contains("Destroy it"),
        "{msg}"
    );
    registry.destroy_vat("c1").wait().unwrap();
    assert!(registry.broken_vats().is_empty());
    registry.shutdown();
}

#[test]
fn a_store_that_vanished_is_an_error_not_a_fresh_start() {
    for (kind_name, kind) in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
        populate(&registry);
        registry.shutdown();
        drop(registry);
        std::fs::remove_file(dir.path().join(kind.file_name())).unwrap();
        let err = Registry::open(dir.path(), env(), kind.clone()).unwrap_err();
        assert!(
            matches!(err, Error::StoreMissing { .. }),
            "{kind_name}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(kind.file_name()), "{msg}");
        assert!(msg.contains("refusing to start afresh"), "{msg}");
        // The directory was left as it was.
        assert_eq!(files(dir.path()), ["REGISTRY"], "{kind_name}");
    }
}

#[test]
fn a_store_of_another_kind_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(
        dir.path(),
        env(),
        StoreKind::Sqlite(Durability::EveryCommit),
    )
    .unwrap();
    populate(&registry);
    registry.shutdown();
    drop(registry);
    let err = Registry::open(dir.path(), env(), StoreKind::Log(LogOptions::default())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("registry.sqlite") && msg.contains("another store kind"),
        "{msg}"
    );
}

#[test]
fn restore_vat_never_constructs_and_names_the_vat_and_store() {
    for (kind_name, kind) in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
        let err = registry.restore_vat::<Ref<Counter>>("nobody").unwrap_err();
        match &err {
            Error::NothingSaved { vat, store } => {
                assert_eq!(vat, "nobody");
                assert!(store.contains(kind.file_name()), "{kind_name}: {store}");
            }
            other => panic!("{kind_name}: expected NothingSaved, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("no constructor was run"), "{msg}");
        assert!(
            registry.vat("nobody").is_none(),
            "{kind_name}: a vat was left running"
        );
        registry.shutdown();
        drop(registry);
        // No lock file or other debris after the failed start (a log is only created by
        // its first commit; SQLite creates its empty database at open).
        let expected: &[&str] = match kind {
            StoreKind::Sqlite(_) => &["REGISTRY", "registry.sqlite"],
            _ => &[],
        };
        assert_eq!(files(dir.path()), expected, "{kind_name}");
        // And the directory still opens: no commit, no "vanished store".
        Registry::open(dir.path(), env(), kind.clone())
            .unwrap()
            .shutdown();
    }
}

#[test]
fn another_root_type_names_the_saved_type_and_what_was_restored() {
    let registry = Registry::in_memory(env());
    let (_, _account) = registry
        .start_vat("bank", || spawn(Account { balance: 5 }))
        .unwrap();
    // Running: nothing is restored.
    let err = registry
        .start_vat("bank", never::<Ref<Counter>>)
        .unwrap_err();
    match &err {
        Error::RootMismatch {
            saved,
            expected,
            running: true,
            ..
        } => {
            assert_eq!(saved, "a Account");
            assert_eq!(expected, "a Counter");
        }
        other => panic!("expected a root mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("nothing was restored"), "{err}");
    // Saved, not running: restored, checked, and not left running.
    let registry = registry.restart().unwrap();
    let err = registry.restore_vat::<Ref<Counter>>("bank").unwrap_err();
    match &err {
        Error::RootMismatch {
            saved,
            running: false,
            ..
        } => assert_eq!(saved, "a Account"),
        other => panic!("expected a root mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("It was not started"), "{err}");
    assert!(registry.vat("bank").is_none());
    registry.shutdown();
}

/// A newer Account, as a later release would save it.
mod newer {
    use gobs_runtime::define_actor;

    #[define_actor(name = "registry_store::Account", version = 2, upgrade(from = 1, with = up))]
    #[derive(Debug)]
    pub struct Account {
        pub balance: u64,
    }

    fn up((b,): (u64,)) -> (u64,) {
        (b,)
    }

    #[define_actor]
    impl Account {}
}

#[test]
fn a_portrait_newer_than_the_code_is_a_matchable_error() {
    let dir = tempfile::tempdir().unwrap();
    let kind = StoreKind::Log(LogOptions::default());
    let newer_env =
        persistence_env!("newer", extends: [common_env()], actors: [newer::Account]).unwrap();
    let registry = Registry::open(dir.path(), newer_env, kind.clone()).unwrap();
    registry
        .start_vat("bank", || spawn(newer::Account { balance: 5 }))
        .unwrap();
    registry.shutdown();
    drop(registry);
    let registry = Registry::open(dir.path(), env(), kind).unwrap();
    let err = registry.restore_vat::<Ref<Account>>("bank").unwrap_err();
    let Error::Restore {
        source: Some(source),
        ..
    } = &err
    else {
        panic!("expected a restore error, got {err:?}");
    };
    match &**source {
        Error::PortraitNewer { saved, current, .. } => assert_eq!((*saved, *current), (2, 1)),
        other => panic!("expected PortraitNewer, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("newer than this program's version 1"),
        "{err}"
    );
    registry.shutdown();
}

#[test]
fn a_torn_tail_that_drops_a_commit_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let kind = StoreKind::Log(LogOptions::default());
    let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
    let (_, counter) = registry
        .start_vat("count", || spawn(Counter { count: 0 }))
        .unwrap();
    counter.send().increment().wait().unwrap();
    let path = dir.path().join("registry.log");
    let before = std::fs::metadata(&path).unwrap().len();
    counter.send().increment().wait().unwrap();
    registry.shutdown();
    drop(registry);
    // A crash mid-append: the last frame is torn.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let registry = Registry::open(dir.path(), env(), kind).unwrap();
    let lost = registry.lost_at_open().expect("the cut is reported");
    assert_eq!(lost.commits, 1);
    assert_eq!(lost.offset, before);
    let (_, counter): (_, Ref<Counter>) = registry.restore_vat("count").unwrap();
    assert_eq!(
        counter.send().get().wait().unwrap(),
        1,
        "the last whole commit"
    );
    registry.shutdown();
}

#[test]
fn a_second_process_handle_is_refused_as_locked() {
    for (kind_name, kind) in kinds() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), env(), kind.clone()).unwrap();
        let err = Registry::open(dir.path(), env(), kind.clone()).unwrap_err();
        let store = err
            .store_error()
            .unwrap_or_else(|| panic!("{kind_name}: not a store error: {err:?}"));
        assert_eq!(store.kind(), StoreErrorKind::Locked, "{kind_name}: {err}");
        registry.shutdown();
    }
}

#[test]
fn a_vat_whose_portraits_do_not_restore_is_broken_with_the_restore_error() {
    let registry = Registry::in_memory(env());
    populate(&registry);
    let registry = registry.restart().unwrap();
    memory_of(&registry).edit(|records| {
        if let Some(VatRecord::Saved(graph)) = records.get_mut("c1") {
            for portrait in graph.actors.values_mut() {
                portrait.name = "nowhere::Gone".to_string();
            }
        }
    });
    let registry = registry.restart().unwrap();
    let (_, spawner): (_, Ref<Spawner>) = registry.restore_vat("spawner").unwrap();
    let c2 = spawner.send().counter("c2".into()).wait().unwrap().unwrap();
    assert_eq!(c2.send().increment().wait().unwrap(), 2, "the rest works");
    let c1 = spawner.send().counter("c1".into()).wait().unwrap().unwrap();
    assert!(c1.send().increment().wait().is_err());
    let reason = registry.broken_reason("c1").expect("c1 is reported broken");
    assert!(reason.contains("nowhere::Gone"), "{reason}");
    assert!(reason.contains("aliases"), "the fix is named: {reason}");
    registry.destroy_vat("c1").wait().unwrap();
    spawner.send().forget("c1".into()).wait().unwrap();
    let registry = registry.restart().unwrap();
    let (_, spawner): (_, Ref<Spawner>) = registry.restore_vat("spawner").unwrap();
    assert_eq!(spawner.send().names().wait().unwrap(), ["c2"]);
    assert!(registry.broken_vats().is_empty());
    registry.shutdown();
}

/// A store whose actor is saved as another type than the references to it expect does
/// not restore into the wrong type: the vat's restore fails, naming the actors and the
/// type the reference expects.
#[test]
fn a_reference_to_an_actor_saved_as_another_type_fails_the_restore_naming_the_type() {
    use gobs_runtime::Actor as _;
    let registry = Registry::in_memory(env());
    registry
        .start_vat("kept", || {
            spawn(Keeper {
                counter: spawn(Counter { count: 1 }),
            })
        })
        .unwrap();
    let registry = registry.restart().unwrap();
    // An account's arguments have a counter's shape: only the type is wrong.
    memory_of(&registry).edit(|records| {
        let Some(VatRecord::Saved(graph)) = records.get_mut("kept") else {
            panic!("vat kept is saved");
        };
        for portrait in graph.actors.values_mut() {
            if portrait.name == Counter::entry().name {
                portrait.name = Account::entry().name.to_string();
            }
        }
    });
    let registry = registry.restart().unwrap();
    let err = registry.restore_vat::<Ref<Keeper>>("kept").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("as a Counter, but it was saved as another type"),
        "{text}"
    );
    registry.shutdown();
}
