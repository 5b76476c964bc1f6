//! `#[cfg]` that is on, on fields and messages: everything is there as if unwritten.
use gobs_runtime::{Vat, define_actor};

#[define_actor]
pub struct Account {
    balance: u64,
    #[cfg(all())]
    extra: String,
    #[cfg(all())]
    #[actor(default = 7)]
    bonus: u64,
    #[actor(transient)]
    #[cfg(all())]
    cache: Option<u64>,
    #[cfg_attr(any(), cfg(any()))]
    kept: u32,
}

#[define_actor]
impl Account {
    pub fn balance(&self) -> u64 {
        self.balance + self.bonus + u64::from(self.kept) + self.cache.unwrap_or(0)
    }

    #[cfg(all())]
    pub fn only_sometimes(&self) -> String {
        self.extra.clone()
    }

    #[cfg_attr(all(), allow(clippy::needless_pass_by_ref_mut))]
    pub fn set_kept(&mut self, kept: u32) {
        self.kept = kept;
    }
}

fn main() {
    let vat = Vat::spawn("cfg-on").unwrap();
    let a = vat
        .spawn_actor(Account::new(3, "more".into(), 0))
        .unwrap();
    a.send().set_kept(1).wait().unwrap();
    assert_eq!(a.send().balance().wait().unwrap(), 11);
    assert_eq!(a.send().only_sometimes().wait().unwrap(), "more");
    let names: Vec<&str> = a.methods().iter().map(|m| m.name).collect();
    assert_eq!(names, ["balance", "only_sometimes", "set_kept"]);
    vat.shutdown();
}
