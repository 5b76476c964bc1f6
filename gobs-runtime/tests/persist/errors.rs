//! What a persistent vat refuses, and how it says so: a type outside its env, an unknown or
//! newer portrait, a corrupt store, a root of another type, trailing bytes, a bad name or
//! builder, another kind of store.

use super::*;

#[test]
fn spawning_a_type_outside_the_env_fails_at_spawn_naming_type_and_env() {
    let (vat, _c) = start("strict", MemoryStore::new(), || spawn(Counter { count: 0 }));
    let err = vat.run(|| spawn(Stranger {})).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("Stranger") && msg.contains("\"test\""),
        "{msg}"
    );
    assert!(msg.contains("persistent vat \"strict\""), "{msg}");
    let err = vat
        .run(|| gobs_runtime::try_spawn(Stranger {}))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::NotInEnv { .. }), "{err}");
    vat.shutdown();
}

#[test]
fn an_unknown_name_on_restore_names_the_name_the_store_and_the_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.log");
    let (vat, _) = start(
        "v",
        LogStore::open(&path, LogOptions::default()).unwrap(),
        || spawn(Counter { count: 1 }),
    );
    vat.shutdown();
    let err = PersistentVat::builder("v")
        .env(common_env())
        .store(LogStore::open(&path, LogOptions::default()).unwrap())
        .spawn(never::<Ref<Counter>>)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("persist::Counter"), "{msg}");
    assert!(msg.contains("v.log"), "{msg}");
    assert!(msg.contains("\"common\""), "{msg}");
    assert!(msg.contains("aliases"), "{msg}");
}

#[test]
fn a_corrupt_store_is_a_clear_error_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.log");
    let (vat, _) = start(
        "v",
        LogStore::open(&path, LogOptions::default()).unwrap(),
        || spawn(Counter { count: 1 }),
    );
    vat.shutdown();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = LogStore::open(&path, LogOptions::default()).err().unwrap();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_reference_to_a_plain_vat_cannot_be_saved_and_the_turn_rolls_back() {
    let plain = Vat::spawn("plain").unwrap();
    let outside = plain.spawn_actor(Counter { count: 0 }).unwrap();
    let store = MemoryStore::new();
    let (vat, node) = start("p", store.clone(), || spawn(Node::new("n")));
    let err = node.send().set_counter(Some(outside)).wait().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("not a persistent vat of this persistence registry"),
        "{msg}"
    );
    assert_eq!(node.send().counter().wait().unwrap(), None, "rolled back");
    // The vat keeps working and saving.
    node.send().set_next(None).wait().unwrap();
    vat.shutdown();
    plain.shutdown();
}

#[test]
fn a_newer_portrait_than_the_code_is_refused() {
    mod v2 {
        use gobs_runtime::define_actor;
        #[define_actor(name = "persist::Versioned", version = 2, upgrade(from = 1, with = up))]
        pub struct Versioned {
            pub n: u64,
        }
        fn up((n,): (u64,)) -> (u64,) {
            (n,)
        }
        #[define_actor]
        impl Versioned {}
    }
    mod v1 {
        use gobs_runtime::define_actor;
        #[define_actor(name = "persist::Versioned")]
        pub struct Versioned {
            pub n: u64,
        }
        #[define_actor]
        impl Versioned {}
    }
    let store = MemoryStore::new();
    let (vat, _) = PersistentVat::builder("ver")
        .env(Env::builder("new").add::<v2::Versioned>().build().unwrap())
        .store(store.clone())
        .spawn(|| spawn(v2::Versioned { n: 1 }))
        .unwrap();
    vat.shutdown();
    let err = PersistentVat::builder("ver")
        .env(Env::builder("old").add::<v1::Versioned>().build().unwrap())
        .store(store)
        .spawn(never::<Ref<v1::Versioned>>)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("version 2") && msg.contains("version 1"),
        "{msg}"
    );
}

#[test]
fn the_root_constructor_type_is_checked_on_restore() {
    let store = MemoryStore::new();
    let (vat, _) = start("typed", store.clone(), || spawn(Counter { count: 0 }));
    vat.shutdown();
    let err = PersistentVat::builder("typed")
        .env(env())
        .store(store)
        .spawn(never::<Ref<Node>>)
        .unwrap_err();
    match &err {
        Error::RootMismatch {
            saved,
            expected,
            running: false,
            ..
        } => {
            assert_eq!(saved, "a Counter");
            assert_eq!(expected, "a Node");
        }
        other => panic!("expected a root mismatch, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("was saved with a Counter as root 0"), "{msg}");
    assert!(msg.contains("It was not started"), "{msg}");
}

#[test]
fn bytes_after_the_last_field_or_argument_are_refused() {
    use gobs_runtime::Actor;
    let mut bytes = Counter { count: 3 }.save().unwrap();
    assert_eq!(Counter::restore(1, &bytes).unwrap().count, 3);
    bytes.push(0x01);
    let err = Counter::restore(1, &bytes).unwrap_err().to_string();
    assert!(err.contains("1 bytes follow its last saved field"), "{err}");

    let vat = Vat::spawn("by-name").unwrap();
    let c = vat.spawn_actor(Counter { count: 0 }).unwrap();
    let mut args = rmp_serde::to_vec(&()).unwrap();
    assert!(c.invoke("increment", args.clone()).wait().is_ok());
    args = vec![0x90, 0x01]; // an empty list, then a stray byte
    let err = c.invoke("increment", args).wait().unwrap_err().to_string();
    assert!(err.contains("bytes follow the last argument"), "{err}");
    vat.shutdown();
}

#[test]
fn a_bad_vat_name_or_a_missing_builder_part_says_what_to_do() {
    let registry = Registry::in_memory(env());
    let err = registry
        .start_vat("../escape", || spawn(Counter { count: 0 }))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot name a persistent vat") && err.contains("letters, digits"),
        "{err}"
    );
    let err = PersistentVat::builder("no-store")
        .env(env())
        .spawn(|| spawn(Counter { count: 0 }))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs store") && err.contains(".store(...)"),
        "{err}"
    );
    let err = PersistentVat::builder("no-env")
        .store(MemoryStore::new())
        .spawn(|| spawn(Counter { count: 0 }))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs env") && err.contains(".env(...)"),
        "{err}"
    );
}

#[test]
fn a_lone_vat_takes_over_its_stores_one_vat_and_refuses_a_registrys_store() {
    let store = MemoryStore::new();
    let (vat, c) = start("old-name", store.clone(), || spawn(Counter { count: 0 }));
    c.send().increment().wait().unwrap();
    vat.shutdown();
    // Renamed: the store's one vat is taken over, in one commit.
    let (vat, c) = start("new-name", store.clone(), never::<Ref<Counter>>);
    assert_eq!(c.send().get().wait().unwrap(), 1);
    vat.shutdown();
    let held: Vec<String> = store.clone().load().unwrap().into_keys().collect();
    assert_eq!(held, ["new-name"]);

    let registry = Registry::in_memory(env());
    registry
        .start_vat("a", || spawn(Counter { count: 0 }))
        .unwrap();
    registry
        .start_vat("b", || spawn(Counter { count: 0 }))
        .unwrap();
    registry.shutdown();
    let err = PersistentVat::builder("a")
        .env(env())
        .store(registry.memory_store().unwrap())
        .spawn(never::<Ref<Counter>>)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("2 vats (a, b)") && msg.contains("Registry::open"),
        "{msg}"
    );
}
