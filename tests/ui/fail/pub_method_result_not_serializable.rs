use gobs_runtime::define_actor;

pub struct Report {
    pub total: u64,
}

#[define_actor]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {
    pub fn report(&self) -> Report {
        Report { total: self.count }
    }
}

fn main() {}
