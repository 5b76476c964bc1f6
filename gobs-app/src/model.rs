//! What gobs-app talks about, wherever it runs: machines ([`MachineName`], [`MachineInfo`],
//! [`MachineStatus`]), providers ([`ProviderInfo`]), what a command printed ([`RunOutput`]),
//! a request's [`Cancel`] switch, and why something failed ([`BackendError`], with its
//! [`ErrorKind`]).
//!
//! Actors, the backend, the daemon and the command line all use these types; this module
//! uses none of theirs. Build errors with the constructors below so every layer words them
//! alike, and show user-given text in messages with [`shown`], which keeps a hostile
//! 16 MiB name from being echoed back whole.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// Longest machine name.
pub const MAX_MACHINE_NAME: usize = 63;

/// How many characters of a user-given string a message shows.
pub const SHOWN_CHARS: usize = 64;

/// `text` quoted for a message, cut after [`SHOWN_CHARS`] characters (saying how long it
/// was), so that an error about a huge value is not itself huge.
///
/// ```
/// use gobs_app::model::shown;
/// assert_eq!(shown("web-1"), r#""web-1""#);
/// let long = "x".repeat(1000);
/// assert!(shown(&long).ends_with("\"… (1000 bytes)"));
/// ```
pub fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// A well-formed machine name: 1 to [`MAX_MACHINE_NAME`] ASCII letters, digits, `.`, `-`
/// or `_`, starting with a letter or digit. Names become directory and vat names, so they
/// are checked where they enter: parsing the command line, decoding a request.
///
/// ```
/// use gobs_app::model::MachineName;
/// assert!("web-1".parse::<MachineName>().is_ok());
/// assert!("../etc".parse::<MachineName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MachineName(String);

impl MachineName {
    /// The name, checked with [`check_machine_name`].
    pub fn new(name: impl Into<String>) -> Result<MachineName, BackendError> {
        let name = name.into();
        check_machine_name(&name)?;
        Ok(MachineName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for MachineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MachineName {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<MachineName, BackendError> {
        MachineName::new(s)
    }
}

impl TryFrom<String> for MachineName {
    type Error = BackendError;
    fn try_from(s: String) -> Result<MachineName, BackendError> {
        MachineName::new(s)
    }
}

impl From<MachineName> for String {
    fn from(name: MachineName) -> String {
        name.0
    }
}

/// Checks a machine name (see [`MachineName`]).
///
/// ```
/// use gobs_app::model::check_machine_name;
/// assert!(check_machine_name("web-1").is_ok());
/// assert!(check_machine_name("../etc").is_err());
/// ```
pub fn check_machine_name(name: &str) -> Result<(), BackendError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && name.len() <= MAX_MACHINE_NAME;
    if ok {
        Ok(())
    } else {
        Err(BackendError::invalid(format!(
            "invalid machine name {}: use 1 to {MAX_MACHINE_NAME} ASCII letters, digits, \
             '.', '-' or '_', starting with a letter or digit",
            shown(name)
        )))
    }
}

/// A request's cancel switch: the daemon sets it when the client that asked went away, and
/// long work (a command run on a machine) stops when it is set. Clones share the switch.
/// (The time limit a request asks for travels in the request: [`crate::ops::Run`].)
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    switch: Arc<AtomicBool>,
}

impl Cancel {
    /// A switch that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Sets the switch.
    pub fn cancel(&self) {
        self.switch.store(true, Ordering::SeqCst);
    }

    /// Whether the switch was set.
    pub fn is_cancelled(&self) -> bool {
        self.switch.load(Ordering::SeqCst)
    }
}

/// A machine as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Unique name.
    pub name: String,
    /// The provider that created it.
    pub provider: String,
    /// Where it is in its life.
    pub status: MachineStatus,
    /// When it was created, in seconds since the Unix epoch (UTC).
    pub created_at: u64,
    /// Names of the capabilities the machine exposes (its hob-client `bindings`).
    pub bindings: Vec<String>,
    /// The last problem the machine had, if any.
    pub error: Option<String>,
    /// The host it is on, if not the boss's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Where a machine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineStatus {
    /// The provider is still making it.
    Creating,
    /// Up and usable.
    Running,
    /// Exists but is not running (its provider may be disabled).
    Stopped,
    /// Creation or the machine failed; see `error`.
    Failed,
    /// The provider is taking it down.
    Destroying,
    /// Made and registered, but the session with its hob-client is down (shown, never
    /// saved: the record stays `running`, and shows so again once the machine is back).
    Unreachable,
}

impl fmt::Display for MachineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MachineStatus::Creating => "creating",
            MachineStatus::Running => "running",
            MachineStatus::Stopped => "stopped",
            MachineStatus::Failed => "failed",
            MachineStatus::Destroying => "destroying",
            MachineStatus::Unreachable => "unreachable",
        })
    }
}

/// An enabled provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Name (`--provider NAME`).
    pub name: String,
    /// Its `kind` in the config.
    pub kind: String,
    /// Whether `create-machine` uses it without `--provider`.
    pub default: bool,
}

/// Bytes kept of each of a command's stdout and stderr; what comes after is dropped, with a
/// note saying how much (see [`RunOutput::truncated`]). Both modes keep the same: the
/// machine cuts the output before the daemon or the command line sees it.
pub const MAX_RUN_OUTPUT: usize = 1024 * 1024;

/// What a command run on a machine did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    /// Exit code, if the command exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Its standard output (lossy UTF-8), at most [`MAX_RUN_OUTPUT`] bytes of it.
    pub stdout: String,
    /// Its standard error (lossy UTF-8), likewise, and gobs-app's notes (output cut, time
    /// limit) at the end.
    pub stderr: String,
    /// Whether some output was cut.
    #[serde(default)]
    pub truncated: bool,
}

/// What went wrong, for programs (`--json` prints it as `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No such machine.
    NotFound,
    /// A machine by that name exists.
    AlreadyExists,
    /// No enabled provider by that name.
    UnknownProvider,
    /// The request itself is malformed (a bad name, an empty command).
    InvalidRequest,
    /// The provider failed to do what was asked.
    Provider,
    /// Reading or writing the state failed.
    Storage,
    /// Client and daemon do not understand each other.
    Protocol,
    /// The daemon is at its connection limit.
    Busy,
    /// A bug.
    Internal,
}

impl ErrorKind {
    /// The kebab-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::AlreadyExists => "already-exists",
            ErrorKind::UnknownProvider => "unknown-provider",
            ErrorKind::InvalidRequest => "invalid-request",
            ErrorKind::Provider => "provider",
            ErrorKind::Storage => "storage",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Busy => "busy",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A failed operation: a kind for programs and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// What went wrong, for programs.
    pub kind: ErrorKind,
    /// What happened and what to do, for people.
    pub message: String,
}

impl BackendError {
    /// An error of any kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> BackendError {
        BackendError {
            kind,
            message: message.into(),
        }
    }

    /// No machine `name`; lists the machines that exist.
    ///
    /// ```
    /// use gobs_app::model::BackendError;
    /// let err = BackendError::unknown_machine("web-2", ["web-1", "db"]);
    /// assert!(err.message.contains("existing machines: web-1, db"));
    /// ```
    pub fn unknown_machine<'a>(
        name: &str,
        existing: impl IntoIterator<Item = &'a str>,
    ) -> BackendError {
        BackendError::new(
            ErrorKind::NotFound,
            format!(
                "no machine named {}; {}",
                shown(name),
                describe_machines(existing)
            ),
        )
    }

    /// Machine `name` exists already; lists the machines that exist.
    pub fn machine_exists<'a>(
        name: &str,
        existing: impl IntoIterator<Item = &'a str>,
    ) -> BackendError {
        BackendError::new(
            ErrorKind::AlreadyExists,
            format!(
                "a machine named {} already exists; pick another name, or destroy it first \
                 with `gobs-app destroy-machine {name}`; {}",
                shown(name),
                describe_machines(existing)
            ),
        )
    }

    /// No enabled provider `name`; lists the enabled ones.
    pub fn unknown_provider<'a>(
        name: &str,
        enabled: impl IntoIterator<Item = &'a str>,
    ) -> BackendError {
        let enabled: Vec<&str> = enabled.into_iter().collect();
        let list = if enabled.is_empty() {
            "none".to_string()
        } else {
            enabled.join(", ")
        };
        BackendError::new(
            ErrorKind::UnknownProvider,
            format!(
                "no enabled provider named {}; enabled providers: {list} \
                 (providers are set in the config file; see `gobs-app providers`)",
                shown(name)
            ),
        )
    }

    /// Reading or writing the state failed.
    pub fn storage(message: impl Into<String>) -> BackendError {
        BackendError::new(ErrorKind::Storage, message)
    }

    /// A provider failed.
    pub fn provider(message: impl Into<String>) -> BackendError {
        BackendError::new(ErrorKind::Provider, message)
    }

    /// The request is malformed, or cannot be done in the machine's current state.
    pub fn invalid(message: impl Into<String>) -> BackendError {
        BackendError::new(ErrorKind::InvalidRequest, message)
    }

    /// Something that should not happen (a bug, or the actors are shutting down).
    pub fn internal(message: impl Into<String>) -> BackendError {
        BackendError::new(ErrorKind::Internal, message)
    }
}

/// An actor's refusal comes back from the runtime wrapped in [`gobs_runtime::Error::Actor`];
/// a `BackendError` inside is unwrapped as it was made. A store that failed (a full disk,
/// damage, a lock) or a vat that cannot be restored is [`ErrorKind::Storage`]. Anything
/// else (a vat that stopped, a turn that panicked) is [`ErrorKind::Internal`].
impl From<gobs_runtime::Error> for BackendError {
    fn from(error: gobs_runtime::Error) -> BackendError {
        if let gobs_runtime::Error::Actor {
            source: Some(source),
            ..
        } = &error
            && let Some(refusal) = source.downcast_ref::<BackendError>()
        {
            return refusal.clone();
        }
        if let Some(store) = error.store_error() {
            let what = crate::actors::reason::store_trouble(store.kind());
            return BackendError::storage(format!("storage failure ({what}): {error}"));
        }
        if matches!(
            error,
            gobs_runtime::Error::StoreMissing { .. }
                | gobs_runtime::Error::VatBroken { .. }
                | gobs_runtime::Error::Restore { .. }
                | gobs_runtime::Error::PortraitNewer { .. }
                | gobs_runtime::Error::MissingUpgrade { .. }
        ) {
            return BackendError::storage(format!("cannot restore the state: {error}"));
        }
        BackendError::internal(format!(
            "internal error in gobs-app's actors: {error}; if gobs-app is not shutting down, \
             this is a bug"
        ))
    }
}

fn describe_machines<'a>(existing: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = existing.into_iter().collect();
    if names.is_empty() {
        "there are no machines (create one with `gobs-app create-machine NAME`)".to_string()
    } else {
        format!("existing machines: {}", names.join(", "))
    }
}
