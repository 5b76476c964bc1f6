//! A machine's anchor: the process whose life is the machine's (a container's init, a VM's
//! qemu, a host machine's hob-client session), recorded by pid and start time
//! (`anchor_record`: in the container provider's record of the machine; in the machine
//! directory's `anchor.pid` for qemu and host machines, and for containers made by earlier
//! releases), so that teardown kills it and never a later process that reused its pid; and
//! the small file helpers the providers that run one share.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// `PID STARTTIME`: the anchor, told apart from a later process that reused its pid.
pub(crate) fn anchor_record(pid: i32) -> String {
    format!("{pid} {}", start_time(pid).unwrap_or_default())
}

/// When process `pid` started (field 22 of its `/proc` stat), if it runs.
pub(crate) fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether process `pid` runs (a zombie does not).
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The end of a machine's console log, to add to an error; empty if there is none.
pub(crate) fn console_tail(console: &Path) -> String {
    let text = std::fs::read(console).unwrap_or_default();
    let start = text.len().saturating_sub(1500);
    let tail = String::from_utf8_lossy(&text[start..]);
    let tail = tail.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!(
            "; the end of its console log ({}):\n{tail}",
            console.display()
        )
    }
}

/// Writes `bytes` to `path`, readable by the owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Kills the anchor recorded in `dir/anchor.pid` (if it is still that process) and waits
/// until it is gone.
pub(crate) fn kill_anchor(dir: &Path, limit: Duration) -> Result<(), String> {
    match std::fs::read_to_string(dir.join("anchor.pid")) {
        Ok(record) => kill_recorded(&record, limit),
        Err(_) => Ok(()),
    }
}

/// Kills the anchor `record` ([`anchor_record`]) names (if it is still that process) and
/// waits until it is gone.
pub(crate) fn kill_recorded(record: &str, limit: Duration) -> Result<(), String> {
    let mut words = record.split_whitespace();
    let (Some(pid), start) = (
        words.next().and_then(|p| p.parse::<i32>().ok()),
        words.next(),
    ) else {
        return Ok(());
    };
    if start.is_none() || start_time(pid).as_deref() != start {
        return Ok(());
    }
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
    let deadline = Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: reaping our own child if it is one (ECHILD otherwise).
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if reaped == pid || start_time(pid).as_deref() != start {
            return Ok(());
        }
        if reaped < 0 && !alive(pid) {
            // Not our child (a restarted daemon): its zombie is init's to reap.
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "process {pid} did not end within {}",
                humantime::format_duration(limit)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A machine's anchor that no record names yet: killed (within `limit`) when dropped
/// before [`Unrecorded::recorded`], so a provisioning that fails after starting it leaves
/// nothing running.
pub(crate) struct Unrecorded {
    anchor: Option<String>,
    limit: Duration,
}

impl Unrecorded {
    /// The anchor `record` ([`anchor_record`]) names, killed unless recorded.
    pub(crate) fn new(record: String, limit: Duration) -> Unrecorded {
        Unrecorded {
            anchor: Some(record),
            limit,
        }
    }

    /// The anchor, for the provider's record.
    pub(crate) fn recorded(mut self) -> String {
        self.anchor.take().unwrap_or_default()
    }
}

impl Drop for Unrecorded {
    fn drop(&mut self) {
        if let Some(anchor) = self.anchor.take()
            && let Err(e) = kill_recorded(&anchor, self.limit)
        {
            tracing::warn!("a machine whose creation failed: {e}");
        }
    }
}
