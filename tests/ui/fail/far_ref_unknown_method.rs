//! A far `Ref<T>`'s proxy has only `T`'s methods: a typo is a compile error, not a
//! by-name call that fails at run time.
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
    let _ = bank.send().opne("gina".into());
}

fn main() {
    let _ = send_to;
}
