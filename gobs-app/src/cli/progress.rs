//! Showing the steps of long work (making or taking down a machine) while the command waits:
//! one line a step on standard error, with the time since the work began.
//!
//! ```text
//!    0.0s  provisioning with qemu provider qemu
//!    0.3s  writing the machine's initramfs
//!    1.1s  booting the VM with KVM
//!    1.6s  waiting for the guest's hob-client to register with the boss (at most 1m 30s)
//!   17.9s  booting: starting the machine's vat
//! created machine q1 (qemu), running
//! ```
//!
//! Only on a terminal, and never with `--json`: piped or redirected, the command prints its
//! answer alone, as before ([`super::app`] decides).

use std::io::Write;

use crate::cli::terminal::neutralise;
use crate::progress::Step;

/// Where the steps of a watched request are shown.
pub struct StepLines<'a> {
    err: &'a mut dyn Write,
}

impl<'a> StepLines<'a> {
    /// Steps shown on `err` (standard error, a terminal).
    pub fn new(err: &'a mut dyn Write) -> StepLines<'a> {
        StepLines { err }
    }

    /// Shows `step` (a failed write is no reason to stop the work: it is dropped).
    pub fn show(&mut self, step: &Step) {
        let seconds = step.elapsed_ms as f64 / 1000.0;
        let skipped = match step.skipped {
            0 => String::new(),
            1 => " (after 1 step not shown)".to_string(),
            n => format!(" (after {n} steps not shown)"),
        };
        // Steps are the daemon's words, but they may quote a machine's (a path, a name).
        let text = neutralise(step.step.as_bytes());
        let mut line = format!("{seconds:>7.1}s  ").into_bytes();
        line.extend_from_slice(&text);
        line.extend_from_slice(skipped.as_bytes());
        line.push(b'\n');
        let _ = self.err.write_all(&line).and_then(|()| self.err.flush());
    }

    /// Says once that the daemon cannot send steps, and that the command goes on without.
    pub fn older_daemon(&mut self, state_dir: &std::path::Path) {
        let _ = writeln!(
            self.err,
            "note: the daemon serving {} is an older gobs-app that does not show progress; \
             waiting without it (restart the daemon with this build to see the steps)",
            state_dir.display()
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_step_is_a_line_with_its_time_and_what_was_not_shown() {
        let mut err = Vec::new();
        let mut lines = StepLines::new(&mut err);
        let step = |text: &str, elapsed_ms, skipped| Step {
            step: text.into(),
            elapsed_ms,
            skipped,
        };
        lines.show(&step("booting the VM", 1234, 0));
        lines.show(&step("waiting\x1b[2J", 61_000, 3));
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "    1.2s  booting the VM\n   61.0s  waiting\\x1b[2J (after 3 steps not shown)\n"
        );
    }
}
