//! Two actor types saved with different numbers of fields, merged into one type that
//! answers to both old names: its first upgrade step takes the saved fields as raw values
//! (`Vec<rmpv::Value>`), whatever their number, and brings them to one layout; typed
//! references to the old types, held by another actor, restore as references to the new.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::store::{LogOptions, RegistryLogStore};
use gobs_runtime::{Env, PersistentVat, Ref, spawn};

mod old {
    use gobs_runtime::{Ref, define_actor};

    #[define_actor(name = "zoo::Cat")]
    pub struct Cat {
        pub name: String,
    }

    #[define_actor]
    impl Cat {}

    #[define_actor(name = "zoo::Dog")]
    pub struct Dog {
        pub name: String,
        pub good: bool,
    }

    #[define_actor]
    impl Dog {}

    #[define_actor(name = "zoo::Keeper")]
    pub struct Keeper {
        pub cat: Ref<Cat>,
        pub dog: Ref<Dog>,
    }

    #[define_actor]
    impl Keeper {}
}

mod new {
    use gobs_runtime::{Ref, define_actor};

    #[define_actor(
        name = "zoo::Pet",
        aliases = ["zoo::Cat", "zoo::Dog"],
        version = 3,
        upgrade(from = 1, with = one_layout),
        upgrade(from = 2, with = visits),
    )]
    pub struct Pet {
        pub name: String,
        pub good: bool,
        pub visits: u64,
    }

    /// A cat saved one field, a dog two: a cat is not known to be good.
    fn one_layout(mut fields: Vec<rmpv::Value>) -> Vec<rmpv::Value> {
        if fields.len() == 1 {
            fields.push(rmpv::Value::Boolean(false));
        }
        fields
    }

    fn visits((name, good): (String, bool)) -> (String, bool, u64) {
        (name, good, 0)
    }

    #[define_actor]
    impl Pet {}

    #[define_actor(name = "zoo::Keeper")]
    pub struct Keeper {
        pub cat: Ref<Pet>,
        pub dog: Ref<Pet>,
    }

    #[define_actor]
    impl Keeper {
        pub fn pets(&self) -> Result<Vec<(String, bool, u64)>, gobs_runtime::Error> {
            [&self.cat, &self.dog]
                .into_iter()
                .map(|p| p.call_with(|p| (p.name.clone(), p.good, p.visits)))
                .collect()
        }
    }
}

#[test]
fn types_saved_with_different_field_counts_restore_as_one_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoo.log");
    let old_env = Env::builder("zoo-old")
        .add::<old::Cat>()
        .add::<old::Dog>()
        .add::<old::Keeper>()
        .build()
        .unwrap();
    let (vat, _) = PersistentVat::builder("zoo")
        .env(old_env)
        .store(RegistryLogStore::open(&path, LogOptions::default()).unwrap())
        .spawn(|| {
            spawn(old::Keeper {
                cat: spawn(old::Cat { name: "tom".into() }),
                dog: spawn(old::Dog {
                    name: "rex".into(),
                    good: true,
                }),
            })
        })
        .unwrap();
    vat.shutdown();

    let new_env = Env::builder("zoo-new")
        .add::<new::Pet>()
        .add::<new::Keeper>()
        .build()
        .unwrap();
    let (vat, keeper): (_, Ref<new::Keeper>) = PersistentVat::builder("zoo")
        .env(new_env)
        .store(RegistryLogStore::open(&path, LogOptions::default()).unwrap())
        .spawn(|| -> Ref<new::Keeper> { panic!("restored, not built") })
        .unwrap();
    assert_eq!(
        keeper.send().pets().wait().unwrap(),
        [("tom".to_string(), false, 0), ("rex".to_string(), true, 0)]
    );
    vat.shutdown();
}
