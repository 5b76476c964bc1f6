use gobs_runtime::define_actor;

#[define_actor]
pub struct Log {
    lines: Vec<String>,
}

#[define_actor]
impl Log {
    pub fn push<T: ToString>(&mut self, line: T) {
        self.lines.push(line.to_string());
    }
}

fn main() {}
