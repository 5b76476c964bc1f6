//! A far `Ref<T>` (an actor on another node) has the same typed `send()` proxy as a near
//! one: each method goes by name through its far object, a `Ref<U>` result is usable as
//! a reference, and a near call is an error at run time, not a panic.
use std::any::Any;
use std::sync::Arc;

use gobs_runtime::carry::{Carried, CarriedReply, encode_carrying};
use gobs_runtime::far::FarObject;
use gobs_runtime::{Error, Promise, Ref, define_actor};

#[define_actor]
pub struct Account {
    balance: u64,
}

#[define_actor]
impl Account {
    pub fn deposit(&mut self, amount: u64) -> u64 {
        self.balance += amount;
        self.balance
    }
}

#[define_actor]
pub struct Bank {}

#[define_actor]
impl Bank {
    pub fn open(&mut self, _owner: String) -> Ref<Account> {
        gobs_runtime::spawn(Account { balance: 0 })
    }
}

/// Answers every call with 7.
struct Seven;

impl FarObject for Seven {
    fn send_by_name(&self, _: &str, _: Vec<u8>, _: Vec<Carried>) -> Promise<CarriedReply> {
        Promise::fulfilled(encode_carrying(&7u64).unwrap())
    }
    fn describe(&self) -> String {
        "seven".into()
    }
    fn sturdyref(&self) -> Result<String, String> {
        Err("seven is not saved".into())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn main() {
    let bank: Ref<Bank> = Ref::from_far(Arc::new(Seven));
    // The result type is a reference: a promise of one, to send to once it arrives.
    let account: Promise<Ref<Account>> = bank.send().open("gina".into());
    drop(account);
    let far_account: Ref<Account> = Ref::from_far(Arc::new(Seven));
    assert_eq!(far_account.send().deposit(5).wait().unwrap(), 7);
    assert!(matches!(
        far_account.call().deposit(5),
        Err(Error::FarCall { .. })
    ));
}
