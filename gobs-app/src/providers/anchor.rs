//! A machine's anchor: the process whose life is the machine's (a container's init, a VM's
//! qemu, a host machine's hob-client session), recorded by pid and start time
//! (`anchor_record`) in the provider's record of the machine, in its registry, so that
//! teardown kills it and never a later process that reused its pid; and the small file
//! helper the providers that run one share.
//!
//! A creation starts its anchor before the record can name it. If it fails, `Unrecorded`
//! kills it; if the daemon ends first, nothing names it but its command line, which names
//! a path in the machine's directory: teardown's backstop (`kill_unrecorded`) ends
//! whatever it names.
//! Machines made by earlier releases have their anchor in an `anchor.pid` file in the
//! machine directory (`kill_anchor`).

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

/// Kills the anchor an earlier release recorded in `dir/anchor.pid` (if it is still that
/// process) and waits until it is gone.
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

/// The processes (other than this one) whose command line holds `flag` followed by `value`:
/// what a creation started for a machine with a path of the machine's own directory (qemu's
/// `-initrd`, pasta's `-P`, the init's or hob-client's `--dir`), whether or not a record
/// names them. Zombies are left out.
pub(crate) fn started_with(flag: &str, value: &Path) -> Vec<i32> {
    let (flag, value) = (flag.as_bytes(), value.as_os_str().as_encoded_bytes());
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(2)
                .any(|pair| pair[0] == flag && pair[1] == value)
        })
        .collect()
}

/// Teardown's backstop: kills every process [`started_with`] finds (each told apart from a
/// later process by its start time, read now) and waits until they are gone.
pub(crate) fn kill_unrecorded(flag: &str, value: &Path, limit: Duration) -> Result<(), String> {
    for pid in started_with(flag, value) {
        tracing::info!(
            pid,
            "ending a process no record named, started with {flag} {}",
            value.display()
        );
        kill_recorded(&anchor_record(pid), limit)?;
    }
    Ok(())
}
