use gobs_runtime::define_actor;

#[define_actor]
pub struct Log {
    lines: Vec<String>,
}

#[define_actor]
impl Log {
    pub fn push(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

fn main() {}
