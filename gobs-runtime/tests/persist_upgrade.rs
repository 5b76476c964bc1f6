//! A store written by version-1 code (checked in as a fixture: a one-vat whole-graph file
//! of the former file store, frozen) restored by version-3 code through the upgrade chain,
//! the log store converting the file on open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::store::one_vat::kept_path;
use gobs_runtime::store::{LogOptions, RegistryLogStore};
use gobs_runtime::{Env, PersistentVat, Ref};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/account-v1.gobs"
);

// Version 1 (the fixture's code) was `#[define_actor(name = "bank::Account")] struct
// Account { owner: String, cents: u64 }`.

mod v3 {
    use gobs_runtime::define_actor;

    /// Version 3: signed balance, a currency (v2) and a history (v3). Steps out of order.
    #[define_actor(
        name = "bank::Account",
        aliases = ["old_bank::Account"],
        version = 3,
        upgrade(from = 2, with = two_to_three),
        upgrade(from = 1, with = one_to_two),
    )]
    pub struct Account {
        pub owner: String,
        pub cents: i64,
        pub currency: String,
        pub history: Vec<i64>,
    }

    fn one_to_two((owner, cents): (String, u64)) -> (String, u64, String) {
        (owner, cents, "EUR".to_string())
    }

    fn two_to_three(
        (owner, cents, currency): (String, u64, String),
    ) -> (String, i64, String, Vec<i64>) {
        let cents = i64::try_from(cents).unwrap_or(i64::MAX);
        (owner, cents, currency, vec![cents])
    }

    #[define_actor]
    impl Account {
        pub fn summary(&self) -> String {
            format!(
                "{}: {} {} ({:?})",
                self.owner, self.cents, self.currency, self.history
            )
        }
    }
}

#[test]
fn a_version_1_store_restores_through_the_upgrade_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.gobs");
    std::fs::copy(FIXTURE, &path).unwrap();
    let env = Env::builder("bank-v3")
        .add::<v3::Account>()
        .build()
        .unwrap();
    let (vat, account): (_, Ref<v3::Account>) = PersistentVat::builder("bank")
        .env(env)
        .store(RegistryLogStore::open(&path, LogOptions::default()).unwrap())
        .spawn(|| -> Ref<v3::Account> { panic!("restored, not built") })
        .unwrap();
    assert_eq!(
        account.send().summary().wait().unwrap(),
        "ada: 1234 EUR ([1234])"
    );
    vat.shutdown();
    // The old file is kept beside the converted store.
    assert_eq!(
        std::fs::read(kept_path(&path)).unwrap(),
        std::fs::read(FIXTURE).unwrap()
    );
}
