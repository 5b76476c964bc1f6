use gobs_runtime::define_actor;

#[define_actor]
pub struct Greeter {
    greeting: String,
}

#[define_actor]
impl Greeter {
    pub fn greet(&self, name: &str) -> String {
        format!("{} {name}", self.greeting)
    }
}

fn main() {}
