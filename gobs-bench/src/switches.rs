//! Context switches of whole processes, read from `/proc`: what the two-process benches
//! print beside their timings, since thread hand-offs (not codecs) dominate a round trip
//! on loopback.

use std::path::Path;

/// The voluntary and involuntary context switches of every live thread of process `pid`
/// so far (`/proc/PID/task/*/status`); `None` where `/proc` cannot be read (not Linux,
/// or the process is gone). Threads that already exited are not counted, so compare two
/// readings only across a stretch in which the process starts and ends no threads.
pub fn context_switches(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it then counts for nothing.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        total += switches_in(&status);
    }
    Some(total)
}

/// The sum of the `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` lines of a
/// `/proc/…/status` text.
fn switches_in(status: &str) -> u64 {
    status
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(
                key,
                "voluntary_ctxt_switches" | "nonvoluntary_ctxt_switches"
            )
            .then(|| value.trim().parse::<u64>().ok())
            .flatten()
        })
        .sum()
}

/// Counts the context switches of a set of processes (the bench and its server) across a
/// stretch of work.
///
/// ```
/// let counter = gobs_bench::Switches::new(&[std::process::id()]);
/// let before = counter.read();
/// std::thread::spawn(|| ()).join().unwrap();
/// let per_op = counter.per_op(before, 1);
/// assert!(per_op.is_some_and(|n| n >= 0.0));
/// ```
#[derive(Debug, Clone)]
pub struct Switches {
    pids: Vec<u32>,
}

impl Switches {
    /// A counter over processes `pids`.
    pub fn new(pids: &[u32]) -> Self {
        Switches {
            pids: pids.to_vec(),
        }
    }

    /// The total so far over every process (`None` if one cannot be read).
    pub fn read(&self) -> Option<u64> {
        self.pids.iter().map(|p| context_switches(*p)).sum()
    }

    /// Switches per operation since `before` (a [`read`](Switches::read)), over `ops`
    /// operations.
    pub fn per_op(&self, before: Option<u64>, ops: u64) -> Option<f64> {
        let (before, now) = (before?, self.read()?);
        Some(now.saturating_sub(before) as f64 / ops.max(1) as f64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sums_both_kinds_of_switch() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(switches_in(status), 15);
    }

    #[test]
    fn this_process_switches_when_a_thread_sleeps() {
        let me = Switches::new(&[std::process::id()]);
        let before = me.read();
        assert!(
            before.is_some(),
            "/proc is readable on the machines the benches run on"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(me.read().unwrap() > before.unwrap());
    }
}
