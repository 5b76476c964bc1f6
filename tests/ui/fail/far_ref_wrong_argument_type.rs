//! A far `Ref<T>`'s proxy takes the method's own argument types.
use gobs_runtime::{Ref, define_actor};

#[define_actor]
pub struct Bank {}

#[define_actor]
impl Bank {
    pub fn open(&mut self, owner: String) -> String {
        owner
    }
}

fn send_to(bank: &Ref<Bank>) {
    let _ = bank.send().open(42u32);
}

fn main() {
    let _ = send_to;
}
