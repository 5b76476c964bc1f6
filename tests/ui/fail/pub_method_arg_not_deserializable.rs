use gobs_runtime::define_actor;

pub struct Job {
    pub id: u64,
}

#[define_actor]
pub struct Queue {
    ids: Vec<u64>,
}

#[define_actor]
impl Queue {
    pub fn push(&mut self, job: Job) {
        self.ids.push(job.id);
    }
}

fn main() {}
