//! Context switches of whole processes, read from `/proc`: what the two-process benches
//! print beside their timings, since thread hand-offs (not codecs) dominate a round trip
//! on loopback.
//!
//! Voluntary switches are a thread going to sleep: a hand-off to another thread, or a
//! wait for the socket. Involuntary ones are the scheduler preempting a running thread;
//! they grow with the machine's load rather than with the design, so both are kept.
//! Beside them, the time the threads ran (`/proc/…/schedstat`): on a machine whose cores
//! are shared, what a round trip costs in CPU, user and kernel, decides its latency.

use std::path::Path;

/// Context switches so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// The thread went to sleep (`voluntary_ctxt_switches`).
    pub voluntary: u64,
    /// The scheduler preempted it (`nonvoluntary_ctxt_switches`).
    pub involuntary: u64,
    /// Nanoseconds the threads ran, in user and kernel mode (`schedstat`'s first field).
    pub cpu_ns: u64,
}

impl Counts {
    /// Both kinds.
    pub fn total(&self) -> u64 {
        self.voluntary + self.involuntary
    }

    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: Counts) -> Counts {
        Counts {
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
        }
    }

    /// The sum of two stretches.
    pub fn plus(&self, other: Counts) -> Counts {
        Counts {
            voluntary: self.voluntary + other.voluntary,
            involuntary: self.involuntary + other.involuntary,
            cpu_ns: self.cpu_ns + other.cpu_ns,
        }
    }
}

/// The context switches of every live thread of process `pid` so far
/// (`/proc/PID/task/*/status`); `None` where `/proc` cannot be read (not Linux, or the
/// process is gone). Threads that already exited are not counted, so compare two readings
/// only across a stretch in which the process starts and ends no threads.
pub fn context_switches(pid: u32) -> Option<Counts> {
    let tasks = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("task")).ok()?;
    let mut total = Counts::default();
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it then counts for nothing.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let ran = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total = total.plus(Counts {
            cpu_ns: cpu_ns_in(&ran),
            ..counts_in(&status)
        });
    }
    Some(total)
}

/// The `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` lines of a
/// `/proc/…/status` text.
fn counts_in(status: &str) -> Counts {
    let mut counts = Counts::default();
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let Ok(n) = value.trim().parse::<u64>() else {
            continue;
        };
        match key {
            "voluntary_ctxt_switches" => counts.voluntary += n,
            "nonvoluntary_ctxt_switches" => counts.involuntary += n,
            _ => {}
        }
    }
    counts
}

/// The time a thread ran, from its `/proc/…/schedstat` text (`run wait slices`, in ns);
/// zero if the kernel keeps none.
fn cpu_ns_in(schedstat: &str) -> u64 {
    schedstat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Counts the context switches of a set of processes (the bench and its server) across a
/// stretch of work.
///
/// ```
/// let counter = gobs_bench::Switches::new(&[std::process::id()]);
/// let before = counter.read_each().unwrap();
/// std::thread::spawn(|| ()).join().unwrap();
/// let after = counter.read_each().unwrap();
/// assert!(after[0].total() >= before[0].total());
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

    /// The counts so far of each process, in the order given (`None` if one cannot be
    /// read).
    pub fn read_each(&self) -> Option<Vec<Counts>> {
        self.pids.iter().map(|p| context_switches(*p)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_kinds_of_switch() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        let counts = counts_in(status);
        assert_eq!(
            counts,
            Counts {
                voluntary: 12,
                involuntary: 3,
                cpu_ns: 0,
            }
        );
        assert_eq!(counts.total(), 15);
        assert_eq!(cpu_ns_in("803860 497447 3\n"), 803_860);
        assert_eq!(cpu_ns_in(""), 0);
    }

    #[test]
    fn a_thread_that_works_shows_its_time() {
        let me = Switches::new(&[std::process::id()]);
        let before = me.read_each().unwrap()[0];
        // Works until the counter shows a millisecond: on a loaded machine that takes
        // longer than a millisecond, and a counter that never moves fails at the deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut ran = Counts::default();
        while ran.cpu_ns < 1_000_000 && std::time::Instant::now() < deadline {
            for _ in 0..10_000 {
                std::hint::spin_loop();
            }
            ran = me.read_each().unwrap()[0].since(before);
        }
        assert!(ran.cpu_ns >= 1_000_000, "{ran:?}");
    }

    #[test]
    fn a_thread_that_sleeps_switches_voluntarily() {
        let me = Switches::new(&[std::process::id()]);
        let before = me.read_each();
        assert!(
            before.is_some(),
            "/proc is readable on the machines the benches run on"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        let slept = me.read_each().unwrap()[0].since(before.unwrap()[0]);
        assert!(slept.voluntary >= 1, "{slept:?}");
    }
}
