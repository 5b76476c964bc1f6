use gobs_runtime::define_actor;

#[define_actor]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {
    pub fn take(self) -> u64 {
        self.count
    }
}

fn main() {}
