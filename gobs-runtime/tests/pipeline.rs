//! Promise pipelining (sends to a promised reference) and messages that answer with a
//! promise (their senders get the promise's value).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gobs_runtime::{Error, Promise, Ref, Vat, define_actor, spawn, spawn_blocking, task};

/// Opens accounts; each open answers with a reference to the new account.
#[define_actor]
#[derive(Default)]
pub struct Bank {
    opened: u32,
}

#[define_actor]
impl Bank {
    pub fn open(&mut self) -> Ref<Account> {
        self.opened += 1;
        spawn(Account::default())
    }

    /// Answers later: senders get a `Promise<u32>`, not a promise of a promise.
    pub fn opened_later(&self) -> Promise<u32> {
        let n = self.opened;
        spawn_blocking(move || n * 10)
    }

    /// A fallible message answering with a promise.
    pub fn audit(&self, ok: bool) -> Result<Promise<String>, String> {
        if ok {
            Ok(spawn_blocking(|| "clean".to_string()))
        } else {
            Err("auditor unavailable".into())
        }
    }
}

/// Remembers every deposit in order.
#[define_actor]
#[derive(Default)]
pub struct Account {
    deposits: Vec<u64>,
    next: Option<Ref<Account>>,
}

#[define_actor]
impl Account {
    pub fn deposit(&mut self, amount: u64) {
        self.deposits.push(amount);
    }

    pub fn deposits(&self) -> Vec<u64> {
        self.deposits.clone()
    }

    pub fn fail(&self) -> Result<(), String> {
        Err("refused".into())
    }

    /// The next account in a chain (spawned on first use): one hop.
    pub fn hop(&mut self) -> Ref<Account> {
        self.next
            .get_or_insert_with(|| spawn(Account::default()))
            .clone()
    }
}

#[test]
fn messages_to_a_promised_reference_arrive_in_order_once_it_resolves() {
    let vat = Vat::spawn("pipe-order").unwrap();
    let (promise, resolver) = Promise::<Ref<Account>>::pair();
    let account = promise.pipeline();
    let sent: Vec<Promise<()>> = (0..50).map(|i| account.send().deposit(i)).collect();
    let deposits = account.send().deposits();
    // Nothing can arrive before the promise resolves.
    let deposits = match deposits.wait_timeout(std::time::Duration::from_millis(20)) {
        Err(still_waiting) => still_waiting,
        Ok(r) => panic!("answered before the promise resolved: {r:?}"),
    };
    let real = vat.spawn_actor(Account::default()).unwrap();
    resolver.fulfill(real.clone());
    for p in sent {
        p.wait().unwrap();
    }
    assert_eq!(deposits.wait().unwrap(), (0..50).collect::<Vec<u64>>());
    // After resolution, sends go straight on, still in order.
    account.send().deposit(99).wait().unwrap();
    assert_eq!(real.send().deposits().wait().unwrap().last(), Some(&99));
    assert_eq!(account.when_resolved().wait().unwrap(), real);
    vat.shutdown();
}

#[test]
fn pipelining_through_a_message_that_answers_with_a_reference() {
    let bank_vat = Vat::spawn("pipe-bank").unwrap();
    let client = Vat::spawn("pipe-client").unwrap();
    let bank = bank_vat.spawn_actor(Bank::default()).unwrap();
    let b = bank.clone();
    let deposits = client
        .run(move || {
            // open → deposit → deposits, all sent in this one turn, before any answer.
            let account = b.send().open().pipeline();
            account.send().deposit(5);
            account.send().deposit(7);
            account.send().deposits()
        })
        .unwrap();
    assert_eq!(deposits.wait().unwrap(), vec![5, 7]);
    bank_vat.shutdown();
    client.shutdown();
}

#[test]
fn a_broken_promise_breaks_every_message_sent_to_it_with_its_error() {
    // Broken after the sends...
    let (promise, resolver) = Promise::<Ref<Account>>::pair();
    let account = promise.pipeline();
    let first = account.send().deposit(1);
    let second = account.send().deposits();
    resolver.break_with(Error::Dispatch {
        actor: "test".into(),
        detail: "the bank is closed".into(),
    });
    for err in [
        first.wait().unwrap_err(),
        second.wait().map(drop).unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::Dispatch { detail: m, .. } if m == "the bank is closed"),
            "{err:?}"
        );
    }
    // ...and before them (pipelined to an already broken promise).
    let account = Promise::<Ref<Account>>::broken(Error::Dispatch {
        actor: "test".into(),
        detail: "already".into(),
    })
    .pipeline();
    let err = account.send().deposit(1).wait().unwrap_err();
    assert!(
        matches!(&err, Error::Dispatch { detail: m, .. } if m == "already"),
        "{err:?}"
    );
    assert!(matches!(
        account.when_resolved().wait().unwrap_err(),
        Error::Dispatch { .. }
    ));
    // A dropped resolver breaks them too.
    let (promise, resolver) = Promise::<Ref<Account>>::pair();
    let account = promise.pipeline();
    let p = account.send().deposit(1);
    drop(resolver);
    assert!(matches!(p.wait().unwrap_err(), Error::Unanswered { .. }));
}

#[test]
fn a_failed_turn_pipelines_nothing() {
    let vat = Vat::spawn("pipe-rollback").unwrap();
    let real = vat.spawn_actor(Account::default()).unwrap();
    let account = Promise::fulfilled(real.clone()).pipeline();
    let a = account.clone();
    let r = vat.try_run(move || {
        a.send().deposit(1);
        Err::<(), _>("the turn fails after sending")
    });
    assert!(r.is_err());
    account.send().deposit(2).wait().unwrap();
    assert_eq!(real.send().deposits().wait().unwrap(), vec![2]);
    vat.shutdown();
}

#[test]
fn a_failing_pipelined_message_breaks_only_its_own_promise() {
    let vat = Vat::spawn("pipe-fail").unwrap();
    let (promise, resolver) = Promise::<Ref<Account>>::pair();
    let account = promise.pipeline();
    let failed = account.send().fail();
    let after = account.send().deposit(3);
    resolver.fulfill(vat.spawn_actor(Account::default()).unwrap());
    let err = failed.wait().unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    after.wait().unwrap();
    assert_eq!(account.send().deposits().wait().unwrap(), vec![3]);
    vat.shutdown();
}

#[test]
fn three_hops_pipelined_across_two_vats() {
    let here = Vat::spawn("pipe-hops-a").unwrap();
    let there = Vat::spawn("pipe-hops-b").unwrap();
    let first = there.spawn_actor(Account::default()).unwrap();
    let f = first.clone();
    let third = here
        .run(move || {
            let second = f.send().hop().pipeline();
            let third = second.send().hop().pipeline();
            third.send().deposit(42);
            third.send().deposits()
        })
        .unwrap();
    assert_eq!(third.wait().unwrap(), vec![42]);
    here.shutdown();
    there.shutdown();
}

#[test]
fn by_name_calls_pipeline_too() {
    let vat = Vat::spawn("pipe-by-name").unwrap();
    let (promise, resolver) = Promise::<Ref<Account>>::pair();
    let account = promise.pipeline();
    let args = rmp_serde::to_vec(&(11u64,)).unwrap();
    let deposited = account.invoke("deposit", args);
    let listed = account.invoke("deposits", Vec::new());
    resolver.fulfill(vat.spawn_actor(Account::default()).unwrap());
    deposited.wait().unwrap();
    let listed: Vec<u64> = rmp_serde::from_slice(&listed.wait().unwrap()).unwrap();
    assert_eq!(listed, vec![11]);
    vat.shutdown();
}

#[test]
fn a_message_answering_with_a_promise_gives_its_senders_the_value() {
    let vat = Vat::spawn("promise-message").unwrap();
    let bank = vat.spawn_actor(Bank::default()).unwrap();
    bank.send().open().wait().unwrap();
    // Typed: a `Promise<u32>`, one wait.
    let p: Promise<u32> = bank.send().opened_later();
    assert_eq!(p.wait().unwrap(), 10);
    assert_eq!(bank.send().audit(true).wait().unwrap(), "clean");
    let err = bank.send().audit(false).wait().unwrap_err();
    assert!(err.to_string().contains("auditor unavailable"), "{err}");
    // By name: the promise's value, encoded.
    let bytes = bank.invoke("opened_later", Vec::new()).wait().unwrap();
    assert_eq!(rmp_serde::from_slice::<u32>(&bytes).unwrap(), 10);
    let bytes = bank
        .invoke("audit", rmp_serde::to_vec(&(true,)).unwrap())
        .wait()
        .unwrap();
    assert_eq!(rmp_serde::from_slice::<String>(&bytes).unwrap(), "clean");
    // Near: the promise itself, to compose in the turn.
    let b = bank.clone();
    let p = vat
        .run(move || {
            let later: Promise<u32> = b.call().opened_later().unwrap();
            later.map(|n| n + 1)
        })
        .unwrap();
    assert_eq!(p.wait().unwrap(), 11);
    vat.shutdown();
}

#[test]
fn a_task_can_be_a_message_answer() {
    let vat = Vat::spawn("task-message").unwrap();
    let other = Vat::spawn("task-message-other").unwrap();
    let bank = other.spawn_actor(Bank::default()).unwrap();
    let b = bank.clone();
    let total = vat
        .run(move || {
            task(async move {
                let account = b.send().open().await?;
                account.send().deposit(1).await?;
                account.send().deposit(2).await?;
                let deposits = account.send().deposits().await?;
                Ok::<_, Error>(deposits.iter().sum::<u64>())
            })
        })
        .unwrap();
    assert_eq!(total.wait().unwrap(), 3);
    vat.shutdown();
    other.shutdown();
}

#[test]
fn a_reference_answered_by_name_is_a_ref_by_name_error() {
    let vat = Vat::spawn("ref-by-name").unwrap();
    let bank = vat.spawn_actor(Bank::default()).unwrap();
    // Listed by `methods()`...
    assert!(bank.methods().iter().any(|m| m.name == "open"));
    // ...and refused clearly when called by name, naming the method and the reference;
    // the turn is rolled back like any failed one.
    let err = bank.invoke("open", Vec::new()).wait().unwrap_err();
    let Error::RefByName {
        actor,
        method,
        reference,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(actor.starts_with("Bank#"), "{actor}");
    assert_eq!(method, "open");
    assert!(reference.starts_with("Account#"), "{reference}");
    assert!(err.to_string().contains("`.send().open(..)`"), "{err}");
    // A reference inside a `Value` too.
    let table = vat
        .spawn_actor(gobs_runtime::actor_lib::GHash::new())
        .unwrap();
    table
        .send()
        .set("bank".into(), bank.clone().into())
        .wait()
        .unwrap();
    let err = table
        .invoke("get", rmp_serde::to_vec(&("bank",)).unwrap())
        .wait()
        .unwrap_err();
    assert!(matches!(err, Error::RefByName { .. }), "{err:?}");
    // Data still goes through; the refused `open` was rolled back (nothing opened).
    let bytes = bank.invoke("opened_later", Vec::new()).wait().unwrap();
    assert_eq!(rmp_serde::from_slice::<u32>(&bytes).unwrap(), 0);
    vat.shutdown();
}

#[test]
fn each_senders_order_is_kept_across_resolution() {
    let target_vat = Vat::spawn("pipe-many-target").unwrap();
    let senders: Vec<Vat> = (0..3)
        .map(|i| Vat::spawn(format!("pipe-many-{i}")).unwrap())
        .collect();
    let (promise, resolver) = Promise::<Ref<Account>>::pair();
    let resolver = std::sync::Mutex::new(Some(resolver));
    let account = promise.pipeline();
    // Each sender sends 0..200 tagged with its number (sender * 1000 + i), in turns of
    // 10 messages; the promise resolves while they are at it.
    let mut done = Vec::new();
    for (s, vat) in senders.iter().enumerate() {
        for chunk in 0..20u64 {
            let a = account.clone();
            done.push(vat.post(move || {
                for i in chunk * 10..chunk * 10 + 10 {
                    a.send().deposit(s as u64 * 1000 + i);
                }
                Ok(())
            }));
        }
        if s == 1 {
            resolver_fulfill_once(&target_vat, &resolver);
        }
    }
    for d in done {
        d.wait().unwrap();
    }
    let deposits = account.send().deposits().wait().unwrap();
    assert_eq!(deposits.len(), 600);
    for s in 0..3u64 {
        let mine: Vec<u64> = deposits.iter().copied().filter(|d| d / 1000 == s).collect();
        assert_eq!(
            mine,
            (0..200).map(|i| s * 1000 + i).collect::<Vec<_>>(),
            "sender {s}"
        );
    }
    drop(resolver);
    target_vat.shutdown();
    for v in senders {
        v.shutdown();
    }
}

/// Resolves the promise with a fresh account (the resolver stays usable for the test to
/// drop later; a second answer would be ignored).
fn resolver_fulfill_once(
    vat: &Vat,
    resolver: &std::sync::Mutex<Option<gobs_runtime::Resolver<Ref<Account>>>>,
) {
    if let Some(r) = resolver.lock().unwrap().take() {
        r.fulfill(vat.spawn_actor(Account::default()).unwrap());
    }
}
