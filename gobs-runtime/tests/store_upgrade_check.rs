//! Checking an upgrade before it runs: every stored portrait restored under new code, the
//! failing actors named with why, and not one byte of the store written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::inspect::StoreImage;
use gobs_runtime::store::LogOptions;
use gobs_runtime::{Env, Ref, Registry, StoreKind, common_env, spawn};

mod v1 {
    use gobs_runtime::define_actor;

    /// Version 1: a price that could be negative.
    #[define_actor(name = "shop::Offer")]
    pub struct Offer {
        pub price: i64,
    }

    #[define_actor]
    impl Offer {}
}

mod v2 {
    use gobs_runtime::define_actor;

    fn from_v1((price,): (i64,)) -> (u64,) {
        (u64::try_from(price).expect("a price is never negative"),)
    }

    /// Version 2: prices are unsigned; the step refuses a negative one (it panics).
    #[define_actor(name = "shop::Offer", version = 2, upgrade(from = 1, with = from_v1))]
    pub struct Offer {
        pub price: u64,
    }

    #[define_actor]
    impl Offer {}
}

fn env_v1() -> Env {
    Env::builder("shop")
        .extend(&common_env())
        .add::<v1::Offer>()
        .build()
        .unwrap()
}

fn env_v2() -> Env {
    Env::builder("shop")
        .extend(&common_env())
        .add::<v2::Offer>()
        .build()
        .unwrap()
}

#[test]
fn check_upgrade_names_the_failing_actor_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let kind = StoreKind::Log(LogOptions::default());
    let registry = Registry::open(dir.path(), env_v1(), kind.clone()).unwrap();
    let (_v, good): (_, Ref<v1::Offer>) = registry
        .start_vat("good", || spawn(v1::Offer { price: 5 }))
        .unwrap();
    let (_v, bad): (_, Ref<v1::Offer>) = registry
        .start_vat("bad", || spawn(v1::Offer { price: -3 }))
        .unwrap();
    drop((good, bad));
    registry.shutdown();
    drop(registry);
    let path = dir.path().join("registry.log");
    let before = std::fs::read(&path).unwrap();

    let image = StoreImage::read(dir.path()).unwrap();
    // Under the code that wrote it, everything restores.
    let same = image.check_upgrade(&env_v1());
    assert_eq!((same.checked, same.upgraded), (2, 0));
    assert!(same.failures.is_empty(), "{:?}", same.failures);

    let report = image.check_upgrade(&env_v2());
    assert_eq!((report.checked, report.upgraded), (2, 2));
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let f = &report.failures[0];
    assert_eq!(
        (f.vat.as_str(), f.id, f.type_name.as_str(), f.version),
        ("bad", Some(0), "shop::Offer", 1)
    );
    assert!(
        f.reason.contains("a price is never negative"),
        "{}",
        f.reason
    );
    assert!(f.reason.contains("version 1 → 2"), "{}", f.reason);

    // Code without the type at all names it and says what to do.
    let report = image.check_upgrade(&common_env());
    assert_eq!(report.failures.len(), 2);
    assert!(
        report.failures[0]
            .reason
            .contains("add its type to the env"),
        "{:?}",
        report.failures
    );

    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the check wrote the store"
    );
    // And the real upgrade agrees: the good vat restores, the bad one does not.
    let registry = Registry::open(dir.path(), env_v2(), kind).unwrap();
    let (_v, good): (_, Ref<v2::Offer>) = registry.restore_vat("good").unwrap();
    drop(good);
    assert!(registry.restore_vat::<Ref<v2::Offer>>("bad").is_err());
    registry.shutdown();
}
