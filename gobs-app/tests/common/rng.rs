//! Random instants for the kill loops: a small xorshift generator seeded from the clock,
//! its seed printed so a failing run can be told apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970");
        let seed = since.as_nanos() as u64 | 1;
        eprintln!("seed {seed}");
        Rng(seed)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Waits for a random instant once clients are at work: until `sent` (the commands they
/// sent) reaches 1 to 6, then 0 to `spread` more; fails the test if they send nothing
/// within `hang`.
pub fn kill_instant(rng: &mut Rng, sent: &AtomicU64, spread: Duration, hang: Duration) {
    let wait_sent = 1 + rng.below(6);
    let started = Instant::now();
    while sent.load(Ordering::SeqCst) < wait_sent {
        assert!(
            started.elapsed() < hang,
            "the clients sent nothing in {hang:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_micros(rng.below(spread.as_micros() as u64)));
}
