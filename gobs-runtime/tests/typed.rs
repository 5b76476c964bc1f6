//! Typed views of the actor-lib collections, and the less-ceremony entry into a vat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::actor_lib::{Cell, GHash, TypedCell, TypedHash};
use gobs_runtime::store::MemoryStore;
use gobs_runtime::{
    Error, PersistentVat, Ref, Vat, common_env, define_actor, persistence_env, spawn,
};

#[define_actor]
pub struct Account {
    balance: i64,
}

#[define_actor]
impl Account {
    pub fn balance(&self) -> i64 {
        self.balance
    }
}

/// Holds a typed table of accounts as a saved field.
#[define_actor]
pub struct Bank {
    accounts: TypedHash<Ref<Account>>,
}

#[define_actor]
impl Bank {
    pub fn open(&mut self, name: String, balance: i64) -> Result<Ref<Account>, Error> {
        let account = spawn(Account { balance });
        self.accounts.call_set(name, account.clone())?;
        Ok(account)
    }

    pub fn account(&self, name: String) -> Result<Option<Ref<Account>>, Error> {
        self.accounts.call_get(name)
    }
}

#[test]
fn a_typed_lookup_gives_a_typed_reference() {
    let vat = Vat::spawn("typed-lookup").unwrap();
    let table = vat.spawn_actor(GHash::new()).unwrap();
    let accounts: TypedHash<Ref<Account>> = TypedHash::new(table.clone());
    let alice = vat.spawn_actor(Account { balance: 10 }).unwrap();
    accounts.set("alice", alice.clone()).wait().unwrap();
    let found: Option<Ref<Account>> = accounts.get("alice").wait().unwrap();
    assert_eq!(found.unwrap().send().balance().wait().unwrap(), 10);
    assert_eq!(accounts.get("bob").wait().unwrap(), None);
    assert_eq!(accounts.keys().wait().unwrap(), ["alice"]);
    assert_eq!(accounts.remove("alice").wait().unwrap(), Some(alice));
    vat.shutdown();
}

#[test]
fn a_value_of_another_type_is_a_wrong_type_error_naming_the_key() {
    let vat = Vat::spawn("typed-wrong").unwrap();
    let table = vat.spawn_actor(GHash::new()).unwrap();
    table.send().set("alice".into(), 7.into()).wait().unwrap();
    let accounts: TypedHash<Ref<Account>> = TypedHash::new(table.clone());
    let err = accounts.get("alice").wait().unwrap_err();
    let Error::WrongType {
        place,
        expected,
        found,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        place.contains("\"alice\"") && place.contains("GHash"),
        "{place}"
    );
    assert_eq!(expected, "a Ref<Account>");
    assert_eq!(found, "an Int (7)");
    assert!(err.to_string().contains("not a Ref<Account>"), "{err}");
    // A reference to another actor type is refused the same way.
    let cell = vat.spawn_actor(Cell::new(0.into())).unwrap();
    table.send().set("bob".into(), cell.into()).wait().unwrap();
    let err = accounts.get("bob").wait().unwrap_err();
    assert!(err.to_string().contains("a reference to a Cell"), "{err}");
    vat.shutdown();
}

#[test]
fn typed_cells_and_near_calls() {
    let vat = Vat::spawn("typed-cell").unwrap();
    let cell: TypedCell<String> = TypedCell::new(vat.spawn_actor(Cell::new("a".into())).unwrap());
    cell.set("b".into()).wait().unwrap();
    assert_eq!(cell.get().wait().unwrap(), "b");
    let got = vat
        .run_with(&cell, |cell| {
            cell.call_set("c".into())?;
            cell.call_get()
        })
        .unwrap();
    assert_eq!(got, "c");
    let as_int: TypedCell<i64> = TypedCell::new(cell.cell().clone());
    assert!(matches!(
        as_int.get().wait().unwrap_err(),
        Error::WrongType { .. }
    ));
    vat.shutdown();
}

#[test]
fn run_with_clones_the_captures_and_passes_gobs_errors_through() {
    let vat = Vat::spawn("run-with").unwrap();
    let a = vat.spawn_actor(Account { balance: 1 }).unwrap();
    let b = vat.spawn_actor(Account { balance: 2 }).unwrap();
    let sum = vat
        .run_with(&(a.clone(), b.clone()), |(a, b)| {
            Ok::<_, Error>(a.call().balance()? + b.call().balance()?)
        })
        .unwrap();
    assert_eq!(sum, 3);
    // A far call inside: the FarCall error comes back as it is, not wrapped.
    let other = Vat::spawn("run-with-other").unwrap();
    let far = other.spawn_actor(Account { balance: 0 }).unwrap();
    let err = vat.run_with(&far, |far| far.call().balance()).unwrap_err();
    assert!(matches!(err, Error::FarCall { .. }), "{err:?}");
    vat.shutdown();
    other.shutdown();
}

#[test]
fn a_typed_table_is_saved_as_a_field_and_comes_back() {
    let env =
        || persistence_env!("typed", extends: [common_env()], actors: [Account, Bank]).unwrap();
    let store = MemoryStore::new();
    let (vat, bank) = PersistentVat::builder("typed-bank")
        .env(env())
        .store(store.clone())
        .spawn(|| {
            spawn(Bank {
                accounts: TypedHash::new(spawn(GHash::new())),
            })
        })
        .unwrap();
    bank.send().open("alice".into(), 30).wait().unwrap();
    vat.shutdown();
    let (vat, bank): (_, Ref<Bank>) = PersistentVat::builder("typed-bank")
        .env(env())
        .store(store)
        .spawn(|| -> Ref<Bank> { panic!("restored, not built") })
        .unwrap();
    let alice = bank.send().account("alice".into()).wait().unwrap().unwrap();
    assert_eq!(alice.send().balance().wait().unwrap(), 30);
    vat.shutdown();
}

#[test]
fn typed_keys_round_trip_and_a_foreign_key_is_named() {
    let vat = Vat::spawn("typed-keys").unwrap();
    let table = vat.spawn_actor(GHash::new()).unwrap();
    let by_id: TypedHash<String, u64> = TypedHash::new(table.clone());
    by_id.set(10u64, "ten".into()).wait().unwrap();
    by_id.set(9u64, "nine".into()).wait().unwrap();
    assert_eq!(by_id.get(9u64).wait().unwrap().as_deref(), Some("nine"));
    // Text order, as documented.
    assert_eq!(by_id.keys().wait().unwrap(), vec![10, 9]);
    table
        .send()
        .set("not-a-number".into(), "x".into())
        .wait()
        .unwrap();
    let err = by_id.keys().wait().unwrap_err();
    assert!(
        matches!(&err, Error::WrongType { found, expected, .. }
            if found == "the key \"not-a-number\"" && expected == "a u64 key"),
        "{err:?}"
    );
    vat.shutdown();
}
