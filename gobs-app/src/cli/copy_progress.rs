//! A copy's progress on a terminal: one line on standard error, rewritten at most a few
//! times a second (bytes so far, of how many when known, and the rate), cleared at the end.
//! Quiet when standard error is not a terminal, and with `--json`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the line is rewritten.
const EVERY: Duration = Duration::from_millis(200);

/// Progress of one copy; clones share it (the thread that reads or writes the stream
/// counts, another finishes).
#[derive(Clone)]
pub struct CopyProgress(Option<Arc<Mutex<Counted>>>);

struct Counted {
    total: u64,
    done: u64,
    start: Instant,
    shown: Option<Instant>,
}

impl CopyProgress {
    /// Progress towards `total` bytes (0: unknown), shown only if `shown`.
    pub fn new(shown: bool, total: u64) -> CopyProgress {
        CopyProgress(shown.then(|| {
            Arc::new(Mutex::new(Counted {
                total,
                done: 0,
                start: Instant::now(),
                shown: None,
            }))
        }))
    }

    /// Counts `n` more bytes.
    pub fn add(&self, n: u64) {
        let Some(counted) = &self.0 else { return };
        let mut c = counted.lock().unwrap_or_else(|p| p.into_inner());
        c.done += n;
        if c.shown.is_some_and(|at| at.elapsed() < EVERY) {
            return;
        }
        c.shown = Some(Instant::now());
        let line = c.line();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
    }

    /// Clears the line, if one was shown.
    pub fn finish(&self) {
        let Some(counted) = &self.0 else { return };
        if counted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .shown
            .is_some()
        {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl Counted {
    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = format!("{}/s", size(self.done as f64 / secs));
        if self.total == 0 {
            return format!("{}  {rate}", size(self.done as f64));
        }
        let pct = (self.done as f64 * 100.0 / self.total as f64).min(100.0);
        format!(
            "{} of {} ({pct:.0}%)  {rate}",
            size(self.done as f64),
            size(self.total as f64)
        )
    }
}

/// `bytes` in the largest binary unit that keeps it above 1.
fn size(bytes: f64) -> String {
    let mut value = bytes;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    format!("{value:.1} TiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_bytes_of_the_total_and_the_rate() {
        let c = Counted {
            total: 4 * 1024 * 1024,
            done: 1024 * 1024,
            start: Instant::now() - Duration::from_secs(2),
            shown: None,
        };
        let line = c.line();
        assert!(line.starts_with("1.0 MiB of 4.0 MiB (25%)"), "{line}");
        assert!(line.contains("512.0 KiB/s"), "{line}");
    }
}
