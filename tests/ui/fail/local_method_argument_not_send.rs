use std::rc::Rc;

use gobs_runtime::define_actor;

#[define_actor]
pub struct Log {
    lines: Vec<String>,
}

#[define_actor]
impl Log {
    #[actor(local)]
    pub fn push_shared(&mut self, line: Rc<String>) {
        self.lines.push(line.to_string());
    }
}

fn main() {}
