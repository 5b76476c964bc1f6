//! The boundary between the CLI/daemon and whatever keeps machines: the [`Backend`] trait,
//! the data it returns, its errors, and [`open_backend`], the one place that picks the
//! implementation.
//!
//! The CLI and the daemon only ever talk to a `Box<dyn Backend + Send + Sync>`, through
//! [`crate::service::Service`], which validates requests (machine names, the default
//! provider) before they reach the backend. A backend therefore gets a concrete provider
//! name and a well-formed machine name, and answers with data or a [`BackendError`] whose
//! message a person can act on (build them with the constructors below so every backend
//! words them alike).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::AppError;
use crate::state_dir::StatePaths;

/// What keeps machines: the boss. Requests take `&self` and may run concurrently (the
/// daemon answers each connection on its own thread), so a slow creation does not hold
/// up a listing; only [`close`](Backend::close) needs the backend alone.
pub trait Backend {
    /// Creates machine `name` with the enabled provider `provider`.
    /// Errors: [`ErrorKind::AlreadyExists`], [`ErrorKind::UnknownProvider`], [`ErrorKind::Provider`].
    fn create_machine(&self, name: &str, provider: &str) -> Result<MachineInfo, BackendError>;

    /// All machines, sorted by name.
    fn list_machines(&self) -> Result<Vec<MachineInfo>, BackendError>;

    /// One machine. Errors: [`ErrorKind::NotFound`].
    fn machine(&self, name: &str) -> Result<MachineInfo, BackendError>;

    /// Runs `command` (argv, never empty) on machine `name` and waits for it.
    fn run(&self, name: &str, command: &[String]) -> Result<RunOutput, BackendError>;

    /// Destroys machine `name` and forgets it; returns its last state.
    fn destroy_machine(&self, name: &str) -> Result<MachineInfo, BackendError>;

    /// The enabled providers, sorted by name (`default` may be left false: the service sets it).
    fn providers(&self) -> Result<Vec<ProviderInfo>, BackendError>;

    /// Makes everything durable before the process lets go of the state (daemon shutdown,
    /// end of an embedded command). Called once; the backend is dropped right after.
    fn close(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Opens the backend for a state directory. The caller holds the state lock
/// (`daemon.lock`) for as long as the backend lives, so the backend owns the state alone.
///
pub fn open_backend(
    paths: &StatePaths,
    config: &Config,
) -> Result<Box<dyn Backend + Send + Sync>, AppError> {
    let backend = crate::boss_backend::BossBackend::open(&paths.dir, config)?;
    Ok(Box::new(backend))
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
}

impl fmt::Display for MachineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MachineStatus::Creating => "creating",
            MachineStatus::Running => "running",
            MachineStatus::Stopped => "stopped",
            MachineStatus::Failed => "failed",
            MachineStatus::Destroying => "destroying",
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

/// What a command run on a machine did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutput {
    /// Exit code, if the command exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Its standard output (lossy UTF-8).
    pub stdout: String,
    /// Its standard error (lossy UTF-8).
    pub stderr: String,
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
    /// use gobs_app::backend::BackendError;
    /// let err = BackendError::unknown_machine("web-2", ["web-1", "db"]);
    /// assert!(err.message.contains("existing machines: web-1, db"));
    /// ```
    pub fn unknown_machine<'a>(
        name: &str,
        existing: impl IntoIterator<Item = &'a str>,
    ) -> BackendError {
        BackendError::new(
            ErrorKind::NotFound,
            format!("no machine named {name:?}; {}", describe_machines(existing)),
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
                "a machine named {name:?} already exists; pick another name, or destroy it first \
                 with `gobs-app destroy-machine {name}`; {}",
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
                "no enabled provider named {name:?}; enabled providers: {list} \
                 (providers are set in the config file; see `gobs-app providers`)"
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
            let what = match store.kind() {
                gobs_runtime::store::StoreErrorKind::DiskFull => "the disk is full",
                gobs_runtime::store::StoreErrorKind::Corrupt => "the state is damaged",
                gobs_runtime::store::StoreErrorKind::Locked => "the state is in use",
                _ => "the state could not be read or written",
            };
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
