//! `#[cfg]` that is off, on a field and on messages: the generated code leaves them out
//! too (the portrait, the snapshot, the constructor, the proxies, the by-name table).
use gobs_runtime::{Vat, define_actor};

#[define_actor]
pub struct Account {
    balance: u64,
    #[cfg(any())]
    extra: String,
    #[cfg(any())]
    #[actor(default = 7)]
    bonus: u64,
    #[actor(transient)]
    #[cfg(any())]
    cache: Option<u64>,
    #[cfg_attr(all(), cfg(any()))]
    hidden_by_cfg_attr: u32,
}

#[define_actor]
impl Account {
    pub fn balance(&self) -> u64 {
        self.balance
    }

    #[cfg(any())]
    pub fn only_sometimes(&self) -> String {
        self.extra.clone()
    }

    #[cfg_attr(all(), cfg(any()))]
    pub fn also_off(&mut self) {}
}

fn main() {
    let vat = Vat::spawn("cfg-off").unwrap();
    let a = vat.spawn_actor(Account { balance: 3 }).unwrap();
    assert_eq!(a.send().balance().wait().unwrap(), 3);
    let names: Vec<&str> = a.methods().iter().map(|m| m.name).collect();
    assert_eq!(names, ["balance"]);
    vat.shutdown();
}
