//! A store written by version-1 code (checked in as a fixture) restored by version-3 code
//! through the upgrade chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::store::{Durability, FileStore};
use gobs_runtime::{Env, PersistentVat, Ref, spawn};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/account-v1.gobs"
);

mod v1 {
    use gobs_runtime::define_actor;

    /// How the account looked in version 1.
    #[define_actor(name = "bank::Account")]
    pub struct Account {
        pub owner: String,
        pub cents: u64,
    }

    #[define_actor]
    impl Account {}
}

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

/// Regenerates the fixture with version-1 code: `GOBS_WRITE_FIXTURE=1 cargo test -p
/// gobs-runtime --test persist_upgrade -- --ignored`.
#[test]
#[ignore = "writes the checked-in fixture"]
fn write_version_1_fixture() {
    if std::env::var("GOBS_WRITE_FIXTURE").is_err() {
        return;
    }
    let _ = std::fs::remove_file(FIXTURE);
    let env = Env::builder("bank-v1")
        .add::<v1::Account>()
        .build()
        .unwrap();
    let (vat, _) = PersistentVat::builder("bank")
        .env(env)
        .store(FileStore::open(FIXTURE, Durability::EveryCommit).unwrap())
        .spawn(|| {
            spawn(v1::Account {
                owner: "ada".into(),
                cents: 1234,
            })
        })
        .unwrap();
    vat.shutdown();
    let _ = std::fs::remove_file(format!("{FIXTURE}.lock"));
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
        .store(FileStore::open(&path, Durability::EveryCommit).unwrap())
        .spawn(|| -> Ref<v3::Account> { panic!("restored, not built") })
        .unwrap();
    assert_eq!(
        account.send().summary().wait().unwrap(),
        "ada: 1234 EUR ([1234])"
    );
    vat.shutdown();
}
