//! The operations, listed once. The list below is the only place an operation is named:
//! from it come
//!
//! - [`Request`]: the command line's subcommands (it derives `clap::Subcommand`; the doc
//!   comments are the help text) and what the control socket carries (serde);
//! - [`Response`]: one variant per operation with its result, plus the error;
//! - [`Backend`]: one method per operation, which the boss's backend (and the tests' fake)
//!   implement, and [`Request::execute`], which calls the right one.
//!
//! Adding an operation is one entry here, its method in [`crate::backend::boss`], and how
//! its answer prints in [`crate::cli::output`].
//!
//! An operation may also take arguments that only the command line has, listed after
//! `cli` (`get-file`'s LOCAL_PATH: where the command writes what came back): they are
//! parsed like the others but never sent (`#[serde(skip)]`) and the backend never sees
//! them; [`crate::cli::app`] acts on them. Fields the command line does not parse
//! (`#[arg(skip)]`, `put-file`'s content) are filled in by the command before it sends the
//! request.

use serde::{Deserialize, Serialize};

use std::path::PathBuf;

use crate::config::human::HumanDuration;
use crate::events::EventPage;
use crate::files::{FileContent, FileCopied, FileMode, RemoteFile};
use crate::model::{BackendError, Cancel, MachineInfo, MachineName, ProviderInfo, RunOutput};
use crate::web::access::WebAccess;

/// Writes out [`Request`], [`Response`] and [`Backend`] from the list of operations.
macro_rules! operations {
    ($(
        $(#[doc = $doc:literal])*
        $op:ident => fn $method:ident($($(#[$field_attr:meta])* $field:ident: $ty:ty),* $(,)?)
            $(cli($($(#[$cli_attr:meta])* $cli:ident: $cli_ty:ty),* $(,)?))? -> $out:ty;
    )*) => {
        /// One operation, as the command line parses it and the control socket carries it
        /// (`{"op":"create-machine","name":"web-1","provider":null}`).
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
        #[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
        pub enum Request {
            $(
                $(#[doc = $doc])*
                $op {
                    $($(#[$field_attr])* $field: $ty,)*
                    $($($(#[$cli_attr])* #[serde(skip)] $cli: $cli_ty,)*)?
                },
            )*
        }

        /// The answer to one [`Request`]: its operation's result, or why it failed
        /// (`{"type":"list-machines","data":[...]}`).
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data", rename_all = "kebab-case")]
        pub enum Response {
            $(
                $(#[doc = $doc])*
                $op($out),
            )*
            /// Any request that failed.
            Error(BackendError),
        }

        /// What keeps machines: one method per operation. Methods take `&self` and may run
        /// concurrently (the daemon answers each connection on its own thread), so a slow
        /// creation does not hold up a listing; only [`close`](Backend::close) needs the
        /// backend alone. `cancel` is set when the client that asked went away.
        pub trait Backend {
            $(
                $(#[doc = $doc])*
                fn $method(&self, cancel: &Cancel, $($field: $ty),*) -> Result<$out, BackendError>;
            )*

            /// Adds an entry to the event log (the commands operators ran, see
            /// [`crate::events::audit`]). Not an operation: clients cannot write the log.
            fn record(
                &self,
                _machine: Option<String>,
                _what: crate::events::What,
            ) -> Result<(), BackendError> {
                Ok(())
            }

            /// Makes everything durable before the process lets go of the state (daemon
            /// shutdown, end of an embedded command). Called once; the backend is dropped
            /// right after.
            fn close(&mut self) -> Result<(), BackendError> {
                Ok(())
            }
        }

        impl Request {
            /// Whether the operation only reads the boss's state: run without a daemon, it
            /// opens the store as a dry run and never writes it, even when opening changed
            /// something in memory (a restart fails what was in flight; the next command
            /// that writes saves that).
            pub fn only_reads(&self) -> bool {
                matches!(
                    self,
                    Request::ListMachines { .. }
                        | Request::Machine { .. }
                        | Request::Providers { .. }
                        | Request::Events { .. }
                        | Request::Web { .. }
                )
            }

            /// The operation's name on the wire (`create-machine`).
            pub fn op(&self) -> String {
                let method = match self {
                    $(Request::$op { .. } => stringify!($method),)*
                };
                method.replace('_', "-")
            }

            /// Runs the request on `backend`.
            pub fn execute(self, backend: &dyn Backend, cancel: &Cancel) -> Response {
                let result = match self {
                    $(
                        Request::$op { $($field,)* .. } => {
                            backend.$method(cancel, $($field),*).map(Response::$op)
                        }
                    )*
                };
                result.unwrap_or_else(Response::Error)
            }
        }

        impl Response {
            /// The answer's data as JSON (what `--json` prints).
            pub fn data_json(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self {
                    $(Response::$op(data) => serde_json::to_value(data),)*
                    Response::Error(e) => serde_json::to_value(e),
                }
            }
        }
    };
}

operations! {
    /// Create a machine
    CreateMachine => fn create_machine(
        /// The new machine's name (letters, digits, '.', '-', '_')
        name: MachineName,
        /// Provider to create it with [default: the config's default_provider]
        #[arg(long, value_name = "P")]
        provider: Option<String>,
    ) -> MachineInfo;

    /// List all machines
    ListMachines => fn list_machines() -> Vec<MachineInfo>;

    /// Show one machine
    Machine => fn machine(
        /// The machine's name
        name: MachineName,
    ) -> MachineInfo;

    /// Run a command on a machine; exits with the command's exit code
    Run => fn run(
        /// The machine's name
        name: MachineName,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
        /// Kill the command after this long, e.g. "90s" or "2h" (at most 30 days)
        /// [default: its provider's run_timeout]
        #[arg(long, value_name = "DURATION")]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<HumanDuration>,
    ) cli(
        /// Write the command's output to a terminal as it is, escape sequences included
        /// (by default a terminal is shown them escaped, as `\x1b`; pipes always get the
        /// bytes unchanged)
        #[arg(long)]
        raw: bool,
    ) -> RunOutput;

    /// Copy a local file onto a machine (at most 512 KiB), written there whole or not at all
    PutFile => fn put_file(
        /// The machine's name
        #[arg(index = 1)]
        name: MachineName,
        /// Where the file goes on the machine (an absolute path)
        #[arg(index = 3, value_name = "REMOTE_PATH")]
        path: String,
        /// Its permission bits, in octal (e.g. 644) [default: the local file's]
        #[arg(long, value_name = "OCTAL")]
        mode: Option<FileMode>,
        /// The file's bytes (read from LOCAL_PATH by the command before it sends anything)
        #[arg(skip)]
        content: FileContent,
    ) cli(
        /// The file to copy
        #[arg(index = 2, value_name = "LOCAL_PATH")]
        local: PathBuf,
    ) -> FileCopied;

    /// Copy a file off a machine (at most 512 KiB) to a local file, or to standard output
    GetFile => fn get_file(
        /// The machine's name
        name: MachineName,
        /// The file on the machine (an absolute path)
        #[arg(value_name = "REMOTE_PATH")]
        path: String,
    ) cli(
        /// Where to write it, replacing the file whole (never half-written); `-` or nothing:
        /// standard output
        #[arg(value_name = "LOCAL_PATH")]
        local: Option<PathBuf>,
    ) -> RemoteFile;

    /// Destroy a machine and forget it
    DestroyMachine => fn destroy_machine(
        /// The machine's name
        name: MachineName,
    ) -> MachineInfo;

    /// List the enabled providers
    Providers => fn providers() -> Vec<ProviderInfo>;

    /// Show the event log (machines' state changes, operators' commands), oldest first
    Events => fn events(
        /// Only the events of this machine
        #[arg(long, value_name = "NAME")]
        #[serde(default)]
        machine: Option<MachineName>,
        /// Only the events after this sequence number
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        #[serde(default)]
        after: u64,
        /// Answer only once there is an event after `after` (what --follow asks; the
        /// daemon answers an empty page if none came within a while)
        #[arg(skip)]
        #[serde(default)]
        wait: bool,
    ) cli(
        /// Keep printing events as they happen, until interrupted (needs `gobs-app daemon`)
        #[arg(long)]
        follow: bool,
    ) -> EventPage;

    /// Show where the daemon serves its metrics and dashboard, with the dashboard's access
    /// token (enable them in the config's metrics and dashboard tables)
    Web => fn web() -> WebAccess;
}
