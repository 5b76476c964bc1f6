use gobs_runtime::define_actor;

#[define_actor]
#[derive(Default)]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {}

#[define_actor]
impl std::fmt::Display for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.count)
    }
}

fn main() {}
