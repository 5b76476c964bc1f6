pub struct Counter {
    count: u64,
}

fn main() {
    let vat = gobs_runtime::Vat::spawn("main").unwrap();
    let _ = vat.spawn_actor(Counter { count: 0 });
}
