//! `crate = "..."`: a crate that reaches gobs through a re-export names the path, on the
//! struct and on the impl block, and the generated code goes through it.
mod runtime {
    pub use gobs_runtime as gobs;
}

use runtime::gobs::{Vat, define_actor};

#[define_actor(crate = "crate::runtime::gobs")]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[define_actor(crate = "crate::runtime::gobs")]
impl Counter {
    pub fn increment(&mut self) -> u64 {
        self.count += 1;
        self.count
    }
}

fn main() {
    let vat = Vat::spawn("crate-override").unwrap();
    let c = vat.spawn_actor(Counter::default()).unwrap();
    assert_eq!(c.send().increment().wait().unwrap(), 1);
    vat.shutdown();
}
