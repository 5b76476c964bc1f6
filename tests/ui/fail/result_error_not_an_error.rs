use gobs_runtime::define_actor;

#[define_actor]
pub struct Counter {
    count: u64,
}

#[define_actor]
impl Counter {
    pub fn decrement(&mut self) -> Result<u64, ()> {
        self.count = self.count.checked_sub(1).ok_or(())?;
        Ok(self.count)
    }
}

fn main() {}
