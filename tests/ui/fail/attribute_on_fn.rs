use gobs_runtime::define_actor;

#[define_actor]
fn counter() -> u64 {
    0
}

fn main() {
    let _ = counter();
}
