//! The event log: what happened to the machines and who asked for it, kept in the boss's
//! store with a bounded retention, for `gobs-app events`, the metrics and the dashboard.
//!
//! - [`Event`]: one entry, with its sequence number, time, machine and [`What`].
//! - [`log::EventLog`]: the actor (in the boss's vat) that keeps the newest entries and
//!   wakes followers when one is added.
//! - [`audit`]: which operator commands are recorded, and who the operator is.

pub mod audit;
pub mod log;

use crate::text::floor_char_boundary;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::MachineStatus;

/// How many events are kept by default (`[events] retain`).
pub const DEFAULT_RETAIN: u64 = 10_000;

/// Most events one page of `gobs-app events` carries (a page is one answer frame).
pub const PAGE_EVENTS: usize = 1_000;

/// Longest error text an event keeps (a provider's error can be long; the record keeps it
/// whole, the log a bounded copy).
pub const MAX_EVENT_TEXT: usize = 1_024;

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in the log: 1, 2, … (never reused, also across restarts).
    pub seq: u64,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The machine it is about, if any.
    pub machine: Option<String>,
    /// What happened.
    pub what: What,
}

/// What an [`Event`] records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum What {
    /// The machine's state changed.
    State {
        /// Its new state.
        state: MachineState,
        /// The provider that makes it.
        provider: String,
        /// Why, when it failed (cut at [`MAX_EVENT_TEXT`]).
        error: Option<String>,
    },
    /// A hob-client that is not the machine's own (a copy of its state) tried to attach
    /// as the machine, and was refused.
    Conflict {
        /// What the machine shows of it: when, from where, why.
        detail: String,
    },
    /// An operator ran a command that acts on machines.
    Command {
        /// Who: the local user (`name (uid N)`).
        user: String,
        /// The operation (`create-machine`).
        op: String,
        /// Its error, if it failed (cut at [`MAX_EVENT_TEXT`]).
        error: Option<String>,
    },
}

/// The states a machine passes through, as events record them: [`MachineStatus`]'s plus
/// `destroyed`, which no record can show (the record is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineState {
    /// The provider is making it.
    Creating,
    /// Up and registered.
    Running,
    /// Registered, but the session with its hob-client is down.
    Unreachable,
    /// Creating or destroying it failed, or gobs-app stopped meanwhile.
    Failed,
    /// The provider is taking it down.
    Destroying,
    /// Gone, record and all.
    Destroyed,
    /// Exists but is not running.
    Stopped,
}

impl From<MachineStatus> for MachineState {
    fn from(status: MachineStatus) -> MachineState {
        match status {
            MachineStatus::Creating => MachineState::Creating,
            MachineStatus::Running => MachineState::Running,
            MachineStatus::Stopped => MachineState::Stopped,
            MachineStatus::Failed => MachineState::Failed,
            MachineStatus::Destroying => MachineState::Destroying,
            MachineStatus::Unreachable => MachineState::Unreachable,
        }
    }
}

impl MachineState {
    /// The state's name (`creating`).
    pub fn as_str(self) -> &'static str {
        match self {
            MachineState::Creating => "creating",
            MachineState::Running => "running",
            MachineState::Unreachable => "unreachable",
            MachineState::Failed => "failed",
            MachineState::Destroying => "destroying",
            MachineState::Destroyed => "destroyed",
            MachineState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for MachineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which events a reader wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only those about this machine.
    pub machine: Option<String>,
    /// Only those after this sequence number.
    pub after: u64,
}

/// One answer to `events`: the matching events after the query's `after`, oldest first,
/// at most [`PAGE_EVENTS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    /// The events.
    pub events: Vec<Event>,
    /// Where the next page starts: pass it as `after` (the last sequence number looked at,
    /// matching or not).
    pub next: u64,
    /// Whether more events follow right now (the page was full).
    pub more: bool,
}

/// One event for people: `TIME  #SEQ  MACHINE  what happened`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(self.at_ms);
        let machine = self.machine.as_deref().unwrap_or("-");
        write!(
            f,
            "{}  #{}  {machine}  ",
            humantime::format_rfc3339_millis(at),
            self.seq
        )?;
        match &self.what {
            What::State {
                state,
                provider,
                error,
            } => {
                write!(f, "{state} (provider {provider})")?;
                match error {
                    Some(error) => write!(f, ": {error}"),
                    None => Ok(()),
                }
            }
            What::Conflict { detail } => f.write_str(detail),
            What::Command { user, op, error } => match error {
                Some(error) => write!(f, "{op} by {user} failed: {error}"),
                None => write!(f, "{op} by {user}"),
            },
        }
    }
}

/// `text` cut at [`MAX_EVENT_TEXT`] bytes (on a character boundary), saying so.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_EVENT_TEXT {
        return text.to_string();
    }
    let cut = floor_char_boundary(text, MAX_EVENT_TEXT);
    format!("{}… (cut, {} bytes)", &text[..cut], text.len())
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_EVENT_TEXT);
        let cut = bounded(&long);
        assert!(cut.len() < MAX_EVENT_TEXT + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!("(cut, {} bytes)", long.len())));
        assert_eq!(bounded("short"), "short");
    }
}
