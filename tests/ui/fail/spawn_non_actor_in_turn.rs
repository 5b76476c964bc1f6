pub struct Counter {
    count: u64,
}

fn main() {
    let vat = gobs_runtime::Vat::spawn("main").unwrap();
    let _ = vat.run(|| {
        let _ = gobs_runtime::spawn(Counter { count: 0 });
    });
}
