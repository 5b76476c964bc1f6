//! The fleet as the command line and the control socket see it: a host's row
//! ([`HostInfo`]), what `gobs-app host …` asks ([`HostAction`]) and answers
//! ([`HostAnswer`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::{BackendError, check_machine_name};

/// The name of the boss's own host: machines made without `--host` are made there.
pub const LOCAL_HOST: &str = "local";

/// How a host stands, as `gobs-app hosts` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Added; its agent has not used its enrolment yet.
    WaitingToJoin,
    /// Its agent answered the boss's last ping.
    Reachable,
    /// Its agent did not answer the boss's pings, since `since`.
    Unreachable,
    /// Not known to this process: only a running daemon pings agents.
    Unknown,
}

impl std::fmt::Display for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostState::WaitingToJoin => "waiting-to-join",
            HostState::Reachable => "reachable",
            HostState::Unreachable => "unreachable",
            HostState::Unknown => "unknown",
        })
    }
}

/// One host of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Its name (`local` for the boss's own host).
    pub name: String,
    /// How it stands.
    pub state: HostState,
    /// Since when it stands so (seconds since the Unix epoch), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// How many machines the boss made on it.
    pub machines: usize,
}

/// What `gobs-app host` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(rename_all = "kebab-case")]
pub enum HostAction {
    /// Add a host: prints the one-time `ocapn://` URI its agent joins with
    /// (`gobs-app agent --join URI`)
    Add {
        /// The host's name (letters, digits, '.', '-', '_'; not "local")
        name: String,
    },
    /// Remove a host: refused while it has machines, unless --destroy-machines (or
    /// --forget-machines, for a host that is gone for good)
    Remove {
        /// The host's name
        name: String,
        /// Destroy its machines first (its agent must be reachable)
        #[arg(long)]
        #[serde(default)]
        destroy_machines: bool,
        /// Forget its machines without reaching its agent, for a host that is gone for
        /// good: whatever still runs there is left as it is, and their shares are revoked
        #[arg(long, conflicts_with = "destroy_machines")]
        #[serde(default)]
        forget_machines: bool,
    },
}

/// What `gobs-app host` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAnswer {
    /// The host.
    pub name: String,
    /// `add`: the one-time enrolment URI for its agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<String>,
    /// `remove`: the machines destroyed with it.
    #[serde(default)]
    pub destroyed: Vec<String>,
    /// `remove --forget-machines`: the machines forgotten with it (not destroyed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forgotten: Vec<String>,
}

/// Checks a host's name: a machine name's rules, and not the boss's own host's.
pub fn check_host_name(name: &str) -> Result<(), BackendError> {
    if name == LOCAL_HOST {
        return Err(BackendError::invalid(format!(
            "{LOCAL_HOST:?} is the boss's own host, which needs no agent; pick another name"
        )));
    }
    check_machine_name(name)
        .map_err(|e| BackendError::invalid(e.message.replacen("machine name", "host name", 1)))
}

/// A time (seconds since the Unix epoch) as people read it.
pub(crate) fn shown_time(at: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at)).to_string()
}

/// Now, in seconds since the Unix epoch.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
