//! What `#[define_actor]` generates, exercised at run time: portraits (`Actor::save` /
//! `Actor::restore`) for every option, upgrades, registry names and envs, calls by name,
//! and the typed `call()` / `send()` proxies.
//!
//! References inside portraits only encode while a persistent vat saves; their round
//! trips are tested with persistent vats, not here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

use gobs_runtime::actor_lib::{Cell, GHash};
use gobs_runtime::{Actor, BoxError, Env, Error, Ref, Value, Vat, common_env, define_actor};
use serde::{Deserialize, Serialize};

mod by_name;
// ---------------------------------------------------------------------------------------
// Actors

/// Defaults and a plain required field.
#[define_actor(name = "tests::Settings")]
#[derive(Debug, PartialEq)]
pub struct Settings {
    owner: String,
    #[actor(default = 8080)]
    port: u16,
    #[actor(default = vec!["admin".to_string()])]
    roles: Vec<String>,
    #[actor(default = Mode::Fast)]
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Mode {
    Fast,
    Safe,
}

#[define_actor]
impl Settings {}

/// A live resource, neither serializable nor `Default`.
#[derive(Debug)]
pub struct Socket {
    pub peer: String,
}

fn reopen(link: &mut Link) {
    link.socket = Some(Socket {
        peer: link.peer.clone(),
    });
    link.restores += 1;
}

/// Transient fields and an `on_restore` hook.
#[define_actor(name = "tests::Link", on_restore = reopen)]
pub struct Link {
    peer: String,
    #[actor(transient)]
    socket: Option<Socket>,
    #[actor(transient = 5)]
    budget: u32,
    #[actor(transient)]
    restores: u32,
    sent: u64,
}

#[define_actor]
impl Link {
    pub fn send_bytes(&mut self, n: u64) -> u64 {
        self.sent += n;
        self.budget = self.budget.saturating_sub(1);
        self.sent
    }
}

// Versions of `Ledger`:
//   v1 (total: u32)
//   v2 (total: u64)
//   v3 (total: u64, currency: String)
//   v4 (total: u64, currency: String, history: Vec<u64>)
// The steps are declared out of order on purpose.

fn ledger_v3_to_v4((total, currency): (u64, String)) -> (u64, String, Vec<u64>) {
    (total, currency, vec![total])
}

fn ledger_v1_to_v2((total,): (u32,)) -> (u64,) {
    (u64::from(total) * 100,)
}

fn ledger_v2_to_v3((total,): (u64,)) -> (u64, String) {
    (total, "EUR".to_string())
}

#[define_actor(
    name = "tests::Ledger",
    aliases = ["tests::accounts::Ledger", "old_tests::Book"],
    version = 4,
    upgrade(from = 3, with = ledger_v3_to_v4),
    upgrade(from = 1, with = ledger_v1_to_v2),
    upgrade(from = 2, with = ledger_v2_to_v3),
)]
#[derive(Debug, PartialEq)]
pub struct Ledger {
    total: u64,
    currency: String,
    history: Vec<u64>,
}

#[define_actor]
impl Ledger {}

fn gap_v2_to_v3((n,): (u64,)) -> (u64,) {
    (n + 1,)
}

/// Version 3 with a step from 2 only: version 1 portraits cannot be restored.
#[define_actor(name = "tests::Gappy", version = 3, upgrade(from = 2, with = gap_v2_to_v3))]
pub struct Gappy {
    n: u64,
}

#[define_actor]
impl Gappy {}

#[derive(Debug)]
pub struct Overdrawn {
    pub wanted: u64,
}

impl fmt::Display for Overdrawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot withdraw {}", self.wanted)
    }
}

impl std::error::Error for Overdrawn {}

/// Messages of every kind, for calls by name and typed proxies.
#[define_actor(name = "tests::Account")]
#[derive(Debug, Default)]
pub struct Account {
    balance: u64,
    log: Vec<String>,
}

#[define_actor]
impl Account {
    /// Read, no arguments.
    pub fn balance(&self) -> u64 {
        self.balance
    }

    /// Write, returns nothing.
    pub fn deposit(&mut self, amount: u64, memo: String) {
        self.balance += amount;
        self.log.push(memo);
    }

    /// Write, fallible: changes state before failing, so a rollback is visible.
    pub fn withdraw(&mut self, amount: u64) -> Result<u64, Overdrawn> {
        self.log.push(format!("withdraw {amount}"));
        self.balance = self
            .balance
            .checked_sub(amount)
            .ok_or(Overdrawn { wanted: amount })?;
        Ok(self.balance)
    }

    /// Read, fallible with a `String` error.
    pub fn check(&self, limit: u64) -> Result<bool, String> {
        if limit == 0 {
            return Err("limit must be positive".to_string());
        }
        Ok(self.balance <= limit)
    }

    /// Read, several arguments and a compound result.
    pub fn summary(&self, prefix: String, max: u32) -> (String, Vec<String>) {
        let lines = self.log.iter().take(max as usize).cloned().collect();
        (format!("{prefix}{}", self.balance), lines)
    }

    /// A trailing `Option` parameter, which callers may leave out.
    pub fn lines(&self, prefix: String, max: Option<u32>) -> Vec<String> {
        let max = max.map_or(usize::MAX, |m| m as usize);
        self.log
            .iter()
            .take(max)
            .map(|l| format!("{prefix}{l}"))
            .collect()
    }

    /// A boxed error.
    pub fn require(&self, at_least: u64) -> Result<(), BoxError> {
        if self.balance < at_least {
            return Err(format!("balance {} is below {at_least}", self.balance).into());
        }
        Ok(())
    }

    /// Not callable by name.
    #[actor(local)]
    pub fn reset(&mut self) {
        self.balance = 0;
    }

    fn private_total(&self) -> u64 {
        self.balance
    }

    /// Uses a private method.
    pub fn total(&self) -> u64 {
        self.private_total()
    }
}

#[define_actor]
pub struct Unit;

#[define_actor]
impl Unit {}

// ---------------------------------------------------------------------------------------
// Helpers

fn args<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).unwrap()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    rmp_serde::from_slice(bytes).unwrap()
}

fn account(vat: &Vat, balance: u64) -> Ref<Account> {
    vat.spawn_actor(Account {
        balance,
        log: Vec::new(),
    })
    .unwrap()
}

fn balance(r: &Ref<Account>) -> u64 {
    r.send().balance().wait().unwrap()
}

fn persistence_message(err: Error) -> String {
    match err {
        Error::Portrait { .. } | Error::PortraitNewer { .. } | Error::MissingUpgrade { .. } => {
            err.to_string()
        }
        other => panic!("expected a portrait error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Portraits

#[test]
fn defaults_fill_new_and_round_trip() {
    let s = Settings::new("ada".to_string());
    assert_eq!(s.port, 8080);
    assert_eq!(s.roles, ["admin"]);
    assert_eq!(s.mode, Mode::Fast);

    // Defaults are ordinary saved fields: a changed value survives a round trip.
    let changed = Settings {
        port: 9000,
        mode: Mode::Safe,
        ..Settings::new("bob".to_string())
    };
    let back = Settings::restore(1, &changed.save().unwrap()).unwrap();
    assert_eq!(back, changed);

    // The portrait is the fields in declaration order.
    let fields: (String, u16, Vec<String>, Mode) = decode(&changed.save().unwrap());
    assert_eq!(
        fields,
        (
            "bob".to_string(),
            9000,
            vec!["admin".to_string()],
            Mode::Safe
        )
    );
}

#[test]
fn transient_fields_are_not_saved_and_on_restore_runs() {
    let mut link = Link::new("10.0.0.2".to_string(), 0);
    assert!(link.socket.is_none());
    assert_eq!((link.budget, link.restores), (5, 0));
    link.send_bytes(40);
    assert_eq!(link.budget, 4);

    let saved = link.save().unwrap();
    // Only `peer` and `sent` are in the portrait.
    let fields: (String, u64) = decode(&saved);
    assert_eq!(fields, ("10.0.0.2".to_string(), 40));

    let back = Link::restore(1, &saved).unwrap();
    assert_eq!(back.peer, "10.0.0.2");
    assert_eq!(back.sent, 40);
    // Rebuilt, not restored: the expression's value, then the hook's work.
    assert_eq!(back.budget, 5);
    assert_eq!(back.restores, 1);
    assert_eq!(back.socket.as_ref().unwrap().peer, "10.0.0.2");
}

#[test]
fn upgrade_chain_runs_every_step_in_order_whatever_the_declaration_order() {
    assert_eq!(Ledger::entry().version, 4);
    let expected = Ledger {
        total: 700,
        currency: "EUR".to_string(),
        history: vec![700],
    };
    // v1 → v2 → v3 → v4
    assert_eq!(Ledger::restore(1, &args(&(7u32,))).unwrap(), expected);
    // v2 → v3 → v4
    assert_eq!(Ledger::restore(2, &args(&(700u64,))).unwrap(), expected);
    // v3 → v4
    let v3 = args(&(700u64, "EUR".to_string()));
    assert_eq!(Ledger::restore(3, &v3).unwrap(), expected);
    // v4: no step
    let now = Ledger {
        total: 1,
        currency: "CHF".to_string(),
        history: vec![],
    };
    assert_eq!(Ledger::restore(4, &now.save().unwrap()).unwrap(), now);
}

#[test]
fn a_portrait_newer_than_the_code_is_refused_naming_both_versions() {
    let msg = persistence_message(Ledger::restore(5, &args(&(1u64,))).unwrap_err());
    assert!(msg.contains("saved at version 5"), "{msg}");
    assert!(msg.contains("this program's version 4"), "{msg}");
    assert!(msg.contains("tests::Ledger"), "{msg}");
}

#[test]
fn a_missing_upgrade_step_names_both_versions() {
    // From 2 the chain exists.
    assert_eq!(Gappy::restore(2, &args(&(1u64,))).unwrap().n, 2);
    let msg = persistence_message(Gappy::restore(1, &args(&(1u64,))).err().unwrap());
    assert!(
        msg.contains("no upgrade step from version 1 to version 2"),
        "{msg}"
    );
    assert!(msg.contains("this program's version 3"), "{msg}");
    assert!(msg.contains("upgrade(from = 1"), "{msg}");
}

#[test]
fn an_old_portrait_that_does_not_fit_its_step_says_which_step() {
    // A v1 Ledger portrait holding a string where the step expects a u32.
    let msg = persistence_message(Ledger::restore(1, &args(&("seven",))).unwrap_err());
    assert!(msg.contains("from version 1"), "{msg}");
    assert!(msg.contains("(u32,)"), "{msg}");
    // One field too many for the step's tuple.
    let msg = persistence_message(Ledger::restore(1, &args(&(7u32, 8u32))).unwrap_err());
    assert!(
        msg.contains("2 saved fields, but the step takes 1"),
        "{msg}"
    );
}

#[test]
fn a_portrait_with_the_wrong_number_of_fields_is_refused() {
    let msg = persistence_message(Settings::restore(1, &args(&("ada",))).unwrap_err());
    assert!(msg.contains("1 saved fields but the actor has 4"), "{msg}");
    assert!(msg.contains("raise `version`"), "{msg}");
}

#[test]
fn unit_actors_round_trip() {
    let saved = Unit.save().unwrap();
    assert_eq!(saved, [0x90], "an empty MessagePack array");
    assert!(Unit::restore(1, &saved).is_ok());
}

// ---------------------------------------------------------------------------------------
// Registry names and envs

#[test]
fn names_default_to_module_path_and_can_be_overridden() {
    assert_eq!(Ledger::entry().name, "tests::Ledger");
    assert_eq!(Unit::entry().name, concat!(module_path!(), "::Unit"));
    assert_eq!(Unit::entry().type_name, "Unit");
    assert!(Unit::entry().file.ends_with("macro_runtime/main.rs"));
}

#[test]
fn aliases_resolve_through_env_lookup() {
    let env = Env::builder("ledgers").add::<Ledger>().build().unwrap();
    for name in [
        "tests::Ledger",
        "tests::accounts::Ledger",
        "old_tests::Book",
    ] {
        let entry = env
            .lookup(name)
            .unwrap_or_else(|| panic!("{name} not found"));
        assert!(std::ptr::eq(entry, Ledger::entry()), "{name}");
    }
    assert!(env.lookup("tests::Nope").is_none());
}

#[test]
fn adding_one_actor_twice_is_not_a_duplicate() {
    let env = Env::builder("twice")
        .add::<Account>()
        .add::<Account>()
        .extend(&common_env())
        .extend(&common_env())
        .build()
        .unwrap();
    assert!(env.contains::<Account>() && env.contains::<GHash>());
}

#[test]
fn registered_env_holds_every_linked_actor() {
    let env = Env::registered("everything").unwrap();
    let names: Vec<&str> = env.entries().iter().map(|e| e.name).collect();
    for name in [
        "tests::Settings",
        "tests::Link",
        "tests::Ledger",
        "tests::Gappy",
        "tests::Account",
        concat!(module_path!(), "::Unit"),
        "gobs_runtime::actor_lib::GHash",
        "gobs_runtime::actor_lib::Cell",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(env.contains::<Cell>());
    assert!(std::ptr::eq(
        env.lookup("old_tests::Book").unwrap(),
        Ledger::entry()
    ));
}

#[test]
fn persistence_env_macro_extends_and_adds() {
    let env = gobs_runtime::persistence_env!(
        "bank",
        extends: [common_env()],
        actors: [Account, Ledger],
    )
    .unwrap();
    assert_eq!(env.name(), "bank");
    assert!(env.contains::<Account>() && env.contains::<Ledger>() && env.contains::<GHash>());
    assert!(!env.contains::<Settings>());
    assert!(
        env.describe().contains("extends \"common\""),
        "{}",
        env.describe()
    );
}

// ---------------------------------------------------------------------------------------
// Calls by name

// ---------------------------------------------------------------------------------------
// Typed proxies

#[test]
fn typed_send_flattens_results() {
    let vat = Vat::spawn("typed-send").unwrap();
    let acc = account(&vat, 10);
    acc.send().deposit(5, "a".to_string()).wait().unwrap();
    assert_eq!(acc.send().withdraw(4).wait().unwrap(), 11);
    assert!(acc.send().check(20).wait().unwrap());

    let err = acc.send().withdraw(100).wait().unwrap_err();
    let Error::Actor { source, .. } = &err else {
        panic!("{err:?}")
    };
    let source = source.as_ref().unwrap();
    assert_eq!(source.downcast_ref::<Overdrawn>().unwrap().wanted, 100);
    assert_eq!(balance(&acc), 11);

    let err = acc.send().check(0).wait().unwrap_err();
    assert!(err.to_string().contains("limit must be positive"), "{err}");
    let err = acc.send().require(1000).wait().unwrap_err();
    assert!(err.to_string().contains("below 1000"), "{err}");
    // Local methods have typed proxies too.
    acc.send().reset().wait().unwrap();
    assert_eq!(balance(&acc), 0);
    vat.shutdown();
}

#[test]
fn typed_call_inside_a_turn_flattens_results() {
    let vat = Vat::spawn("typed-call").unwrap();
    let acc = account(&vat, 10);
    let a = acc.clone();
    let (left, failed) = vat
        .run(move || {
            a.call().deposit(1, "x".to_string()).unwrap();
            let left = a.call().withdraw(6).unwrap();
            let failed = a.call().withdraw(100).unwrap_err();
            (left, failed.to_string())
        })
        .unwrap();
    assert_eq!(left, 5);
    assert!(failed.contains("cannot withdraw 100"), "{failed}");
    assert!(failed.contains("Account#"), "{failed}");

    // Passing the error on with `?` fails the whole turn: the deposit is undone too.
    let a = acc.clone();
    let err = vat
        .try_run(move || {
            a.call().deposit(50, "y".to_string())?;
            a.call().withdraw(1000)?;
            Ok::<(), Error>(())
        })
        .unwrap_err();
    assert!(err.to_string().contains("cannot withdraw 1000"), "{err}");
    assert_eq!(balance(&acc), 5);
    vat.shutdown();
}

#[test]
fn typed_call_outside_a_turn_is_an_error_not_a_panic() {
    let vat = Vat::spawn("outside").unwrap();
    let acc = account(&vat, 1);
    let err = acc.call().balance().unwrap_err();
    assert!(matches!(err, Error::NotInTurn { .. }), "{err:?}");
    vat.shutdown();
}

#[test]
fn a_default_that_spawns_runs_in_the_constructing_turn() {
    #[define_actor(name = "tests::Directory")]
    pub struct Directory {
        owner: String,
        #[actor(default = gobs_runtime::spawn(GHash::new()))]
        table: Ref<GHash>,
    }

    #[define_actor]
    impl Directory {
        #[actor(local)]
        pub fn table(&self) -> Ref<GHash> {
            self.table.clone()
        }
    }

    let vat = Vat::spawn("spawning-default").unwrap();
    let dir = vat
        .run(|| gobs_runtime::spawn(Directory::new("ada".to_string())))
        .unwrap();
    let table = dir.send().table().wait().unwrap();
    table.send().set("k".into(), 1.into()).wait().unwrap();
    assert_eq!(table.send().get("k".into()).wait().unwrap(), Some(1.into()));
    // Outside a turn the default cannot spawn: `new` panics naming the fix.
    let panic = std::panic::catch_unwind(|| Directory::new("bob".to_string()))
        .err()
        .unwrap();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("spawning an actor needs a vat turn"), "{msg}");
    vat.shutdown();
}
