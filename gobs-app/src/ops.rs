//! The operations, listed once. The list below is the only place all of them are named:
//! from it come
//!
//! - [`Request`]: the command line's subcommands (it derives `clap::Subcommand`; the doc
//!   comments are the help text) and what the control socket carries (serde);
//! - [`Response`]: one variant per operation with its result, plus the error;
//! - [`Backend`]: one method per operation of the boss itself, which the boss's backend
//!   (and the tests' fake) implement, and one, [`Backend::on_machine`], for every operation
//!   a machine does; [`Request::execute`] calls the right one.
//!
//! **A machine operation** (`run`, `put-file`, `get-file`) is a typed value implementing
//! [`MachineOp`]: its arguments (the command line's and the control socket's form), its
//! checks, its form on the hob wire, the bounds on its answer and the words of its errors.
//! Every layer between the command line and the machine carries it as a [`MachineCall`]
//! and never names it. Adding one touches three files:
//!
//! 1. `ops/<operation>.rs`: the value (a struct deriving `clap::Args` and serde, its fields
//!    the arguments) and its `impl MachineOp`;
//! 2. this file: its entry in the `machine` list (its help text and its answer's type);
//! 3. `hob_net/machine_ops.rs`: what the hob-client on the machine does for it.
//!
//! Machines of the gobs-app process itself (`local`, `dummy`) refuse operations they do not
//! know; one that should do it gets it in its actor's `MachineActor::serve`. Its answer
//! prints as JSON until [`crate::cli::output`] gives it words of its own.
//!
//! **An operation of the boss** (create, list, destroy, ...) is one entry in the `boss`
//! list and its method in [`crate::backend::boss`].
//!
//! An operation may also take arguments that only the command line has (`get-file`'s
//! LOCAL_PATH: where the command writes what came back): they are parsed like the others
//! but never sent (`#[serde(skip)]`) and the backend never sees them; [`crate::cli::app`]
//! acts on them. Fields the command line does not parse (`#[arg(skip)]`: `stream`, which
//! asks for the request's streams, and `io`, those streams in this process) are set by
//! whoever sends or serves the request ([`Request::stream_io`]).

pub mod get_file;
pub mod machine;
pub mod put_file;
pub mod run;

use serde::{Deserialize, Serialize};

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use gobs_ocapn::captp::Term;

use crate::config::human::HumanDuration;
use crate::events::EventPage;
use crate::files::{FileCopied, RemoteFile};
use crate::hob_net::answers::Call;
use crate::hob_net::wire;
use crate::hosts::model::{HostAction, HostAnswer, HostInfo};
use crate::model::{BackendError, Cancel, MachineInfo, MachineName, ProviderInfo, RunOutput};
use crate::progress::{Progress, Step, Watch};
use crate::shares::model::{Right, ShareAnswer, ShareInfo, ShareList};
use crate::web::access::WebAccess;
pub use get_file::GetFile;
pub use machine::MachineOp;
use machine::Reply;
pub use put_file::PutFile;
pub use run::Run;

/// Writes out [`Request`], [`Response`] and [`Backend`] from the list of operations.
macro_rules! operations {
    (
        boss {$(
            $(#[doc = $doc:literal])*
            $op:ident => fn $method:ident($($(#[$field_attr:meta])* $field:ident: $ty:ty),* $(,)?)
                $(cli($($(#[$cli_attr:meta])* $cli:ident: $cli_ty:ty),* $(,)?))? -> $out:ty;
        )*}
        machine {$(
            $(#[doc = $mdoc:literal])*
            $mop:ident($mty:ty) -> $mout:ty;
        )*}
    ) => {
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
            $(
                $(#[doc = $mdoc])*
                $mop($mty),
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
            $(
                $(#[doc = $mdoc])*
                $mop($mout),
            )*
            /// Any request that failed.
            Error(BackendError),
        }

        /// What keeps machines: one method per operation of the boss, and
        /// [`on_machine`](Backend::on_machine) for every operation of a machine. Methods take
        /// `&self` and may run concurrently (the daemon answers each connection on its own
        /// thread), so a slow creation does not hold up a listing; only
        /// [`close`](Backend::close) needs the backend alone. `cancel` is set when the client
        /// that asked went away.
        pub trait Backend {
            $(
                $(#[doc = $doc])*
                fn $method(&self, cancel: &Cancel, $($field: $ty),*) -> Result<$out, BackendError>;
            )*

            /// Has the machine `call` names do it; answers its operation's response.
            fn on_machine(
                &self,
                cancel: &Cancel,
                call: Arc<dyn MachineCall>,
            ) -> Result<Response, BackendError>;

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
                        | Request::Hosts { .. }
                        | Request::Shares { .. }
                )
            }

            /// The operation's name on the wire (`create-machine`).
            pub fn op(&self) -> String {
                match self {
                    $(Request::$op { .. } => stringify!($method).replace('_', "-"),)*
                    $(Request::$mop(_) => <$mty as MachineOp>::NAME.to_string(),)*
                }
            }

            /// Where its steps go, if it is an operation whose steps its client may watch
            /// (making or taking down a machine).
            pub fn progress_mut(&mut self) -> Option<&mut Watch> {
                match self {
                    Request::CreateMachine { progress, .. }
                    | Request::DestroyMachine { progress, .. } => Some(progress),
                    _ => None,
                }
            }

            /// The machine operation it asks for, if it is one.
            pub fn machine_call(&self) -> Option<&dyn MachineCall> {
                match self {
                    $(Request::$mop(op) => Some(op),)*
                    _ => None,
                }
            }

            /// The machine operation it asks for, owned, if it is one.
            pub fn into_machine_call(self) -> Option<Arc<dyn MachineCall>> {
                match self {
                    $(Request::$mop(op) => Some(Arc::new(op)),)*
                    _ => None,
                }
            }

            /// Runs the request on `backend`.
            pub fn execute(self, backend: &dyn Backend, cancel: &Cancel) -> Response {
                let result = match self {
                    $(
                        Request::$op { $($field,)* .. } => {
                            backend.$method(cancel, $($field),*).map(Response::$op)
                        }
                    )*
                    $(Request::$mop(op) => backend.on_machine(cancel, Arc::new(op)),)*
                };
                result.unwrap_or_else(Response::Error)
            }
        }

        impl Response {
            /// The answer's data as JSON (what `--json` prints).
            pub fn data_json(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self {
                    $(Response::$op(data) => serde_json::to_value(data),)*
                    $(Response::$mop(data) => serde_json::to_value(data),)*
                    Response::Error(e) => serde_json::to_value(e),
                }
            }
        }

        $(
            impl Listed for $mty {
                fn response(answer: <$mty as MachineOp>::Answer) -> Response {
                    Response::$mop(answer)
                }

                fn request(&self) -> Request {
                    Request::$mop(self.clone())
                }
            }
        )*

        /// What a machine's hob client binds: `status`, and each machine operation.
        pub const MACHINE_BINDINGS: &[&str] = &["status", $(<$mty as MachineOp>::NAME),*];

        /// Each machine operation's name, and whether only machines that copy files do it.
        pub const MACHINE_OPERATIONS: &[(&str, bool)] =
            &[$((<$mty as MachineOp>::NAME, <$mty as MachineOp>::ON_FILES)),*];

        /// Each machine operation's variant in [`Request`], and its name.
        #[cfg(test)]
        const MACHINE_VARIANTS: &[(&str, &str)] =
            &[$((stringify!($mop), <$mty as MachineOp>::NAME)),*];
    };
}

operations! {
    boss {
    /// Create a machine
    CreateMachine => fn create_machine(
        /// The new machine's name (letters, digits, '.', '-', '_')
        name: MachineName,
        /// Provider to create it with [default: the config's default_provider; without a
        /// config file, $GOBS_DEFAULT_PROVIDER, else the most real one this host allows]
        #[arg(long, value_name = "P")]
        provider: Option<String>,
        /// Host to create it on [default: local, the boss's own]; `gobs-app hosts` lists
        /// them
        #[arg(long, value_name = "HOST")]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// Whether the client watches the steps (the command line asks on a terminal; the
        /// daemon then sends them as progress frames first, [`crate::daemon::progress`])
        #[arg(skip)]
        #[serde(default, skip_serializing_if = "Watch::is_unasked")]
        progress: Watch,
    ) -> MachineInfo;

    /// List all machines
    ListMachines => fn list_machines() -> Vec<MachineInfo>;

    /// Show one machine
    Machine => fn machine(
        /// The machine's name
        name: MachineName,
    ) -> MachineInfo;

    /// Destroy a machine and forget it
    DestroyMachine => fn destroy_machine(
        /// The machine's name
        name: MachineName,
        /// Whether the client watches the steps (as `create-machine`'s)
        #[arg(skip)]
        #[serde(default, skip_serializing_if = "Watch::is_unasked")]
        progress: Watch,
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

    /// List the hosts machines are made on (the boss's own, "local", and each agent's),
    /// with their state and machine count
    Hosts => fn hosts() -> Vec<HostInfo>;

    /// Add a host (prints the one-time URI its agent joins with) or remove one
    Host => fn host(
        #[command(subcommand)]
        action: HostAction,
    ) -> HostAnswer;

    /// Share a machine: print a URI (ocapn://) with which anyone who holds it does only what
    /// --allow says on that machine (`gobs-app --connect URI run -- CMD`), until it expires
    /// or `gobs-app revoke` cuts it off. Hand it over as a secret
    Share => fn share(
        /// The machine to share
        name: MachineName,
        /// What the URI allows, comma-separated: run, get-file, put-file, status
        #[arg(long, value_name = "RIGHTS", value_delimiter = ',', required = true)]
        allow: Vec<Right>,
        /// Refuse it after this long, e.g. "8h" or "30d" [default: until revoked]
        #[arg(long, value_name = "DURATION")]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<HumanDuration>,
        /// A note `gobs-app shares` shows (whom it is for, why)
        #[arg(long, value_name = "TEXT")]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    ) -> ShareAnswer;

    /// List the shares made (id, machine, rights, note, expiry, last use)
    Shares => fn shares(
        /// Show the recorded uses instead (which share, what, when, refused or not)
        #[arg(long)]
        #[serde(default)]
        log: bool,
    ) -> ShareList;

    /// Revoke a share: its URI is refused from now on, and its calls in flight end
    Revoke => fn revoke(
        /// The share's id (`gobs-app shares` lists them)
        id: String,
    ) -> ShareInfo;
    }

    machine {
    /// Run a command on a machine; exits with the command's exit code
    Run(Run) -> RunOutput;

    /// Copy a local file (or with -r a directory) of any size onto a machine, written there
    /// whole or not at all, with its mode, mtime and (where root) owner; each file's sha256
    /// is checked there; progress is shown on a terminal
    PutFile(PutFile) -> FileCopied;

    /// Copy a file (or with -r a directory) of any size off a machine to a local path,
    /// written whole or not at all and checked by sha256, or a file to standard output
    GetFile(GetFile) -> RemoteFile;
    }
}

/// Where a [`MachineOp`] is listed in [`crate::ops`]: how its answer becomes a
/// [`Response`]. Written by the list, never by hand.
pub trait Listed: MachineOp {
    /// `answer` as the operation's response.
    fn response(answer: Self::Answer) -> Response;
    /// The request asking for it (what a boss passes on to a host's agent).
    fn request(&self) -> Request;
}

/// A machine operation, its type forgotten: what every layer between the command line and
/// the machine carries. Implemented for every listed [`MachineOp`].
pub trait MachineCall: fmt::Debug + Send + Sync {
    /// [`MachineOp::NAME`].
    fn name(&self) -> &'static str;
    /// [`MachineOp::ON_FILES`].
    fn on_files(&self) -> bool;
    /// [`MachineOp::machine`].
    fn machine(&self) -> &MachineName;
    /// [`MachineOp::check`].
    fn check(&self) -> Result<(), BackendError>;
    /// [`MachineOp::time_limit`].
    fn time_limit(&self) -> Option<Duration>;
    /// [`MachineOp::call`].
    fn call(&self, default_limit: Duration) -> Call;
    /// The whole message on the hob wire: the method symbol, then [`MachineOp::args`].
    fn message(&self, default_limit: Duration) -> Vec<Term>;
    /// [`MachineOp::read_reply`].
    fn read_reply(&self, answer: &Term) -> Result<Reply, String>;
    /// The response for `reply` ([`MachineOp::answer`]); an error if `reply` is not this
    /// operation's.
    fn respond(&self, reply: Reply) -> Result<Response, String>;
    /// [`MachineOp::failed`].
    fn failed(&self) -> String;
    /// [`MachineOp::ONLY_READS`].
    fn only_reads(&self) -> bool;
    /// [`MachineOp::when_lost`].
    fn when_lost(&self) -> String;
    /// [`MachineOp::pretend`].
    fn pretend(&self) -> Result<Reply, String>;
    /// [`MachineOp::shown`].
    fn shown(&self) -> Vec<String>;
    /// The operation, for a machine that does it itself to find its type.
    fn as_any(&self) -> &dyn Any;
    /// [`Listed::request`].
    fn request(&self) -> Request;
}

impl<O: Listed> MachineCall for O {
    fn name(&self) -> &'static str {
        O::NAME
    }
    fn on_files(&self) -> bool {
        O::ON_FILES
    }
    fn machine(&self) -> &MachineName {
        MachineOp::machine(self)
    }
    fn check(&self) -> Result<(), BackendError> {
        MachineOp::check(self)
    }
    fn time_limit(&self) -> Option<Duration> {
        MachineOp::time_limit(self)
    }
    fn call(&self, default_limit: Duration) -> Call {
        MachineOp::call(self, default_limit)
    }
    fn message(&self, default_limit: Duration) -> Vec<Term> {
        wire::call(O::NAME, self.args(default_limit))
    }
    fn read_reply(&self, answer: &Term) -> Result<Reply, String> {
        O::read_reply(answer).map(|r| Box::new(r) as Reply)
    }
    fn respond(&self, reply: Reply) -> Result<Response, String> {
        let reply = reply.downcast::<O::Reply>().map_err(|_| {
            format!(
                "machine {} answered `{}` with another operation's reply (a fault of its kind \
                 of machine in gobs-app)",
                MachineOp::machine(self),
                O::NAME
            )
        })?;
        Ok(O::response(self.answer(*reply)))
    }
    fn failed(&self) -> String {
        MachineOp::failed(self)
    }
    fn only_reads(&self) -> bool {
        O::ONLY_READS
    }
    fn when_lost(&self) -> String {
        MachineOp::when_lost(self)
    }
    fn pretend(&self) -> Result<Reply, String> {
        MachineOp::pretend(self).map(|r| Box::new(r) as Reply)
    }
    fn shown(&self) -> Vec<String> {
        MachineOp::shown(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn request(&self) -> Request {
        Listed::request(self)
    }
}

impl Request {
    /// Whether the request asked to be streamed (see [`Request::stream_io`]).
    pub fn streams(&self) -> bool {
        matches!(
            self,
            Request::Run(Run { stream: true, .. })
                | Request::PutFile(PutFile { stream: true, .. })
                | Request::GetFile(GetFile { stream: true, .. })
        )
    }

    /// The in-process streams of a request that asked for them (`run`'s output and input,
    /// a copy's stream), to be set by whoever serves it; `None` for any other request.
    pub fn stream_io(&mut self) -> Option<&mut Option<crate::run_io::RunIo>> {
        match self {
            Request::Run(run) if run.stream => Some(&mut run.io),
            Request::PutFile(put) if put.stream => Some(&mut put.io),
            Request::GetFile(get) if get.stream => Some(&mut get.io),
            _ => None,
        }
    }

    /// Does the request with `execute` on a thread of its own, its steps (if it is an
    /// operation that has some) going to `on_step` on this thread as they come, until
    /// `on_step` answers false ([`crate::progress::watched`]).
    pub fn execute_watched(
        mut self,
        execute: impl FnOnce(Request) -> Response + Send,
        on_step: impl FnMut(Step) -> bool,
    ) -> Response {
        let work = |progress: Progress| {
            if let Some(watch) = self.progress_mut() {
                watch.report_to(progress);
            }
            execute(self)
        };
        crate::progress::watched(work, on_step).unwrap_or_else(|_| {
            Response::Error(BackendError::internal(
                "the thread that ran the request failed",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A machine operation's name is its binding, its method on the wire and (kebab-cased
    /// from the variant) its tag on the control socket: all three must agree, and no two
    /// operations may share one.
    #[test]
    fn machine_operation_names_are_unique_and_match_their_request_tags() {
        let mut seen = std::collections::BTreeSet::new();
        for (variant, name) in MACHINE_VARIANTS {
            let mut kebab = String::new();
            for (i, c) in variant.chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    kebab.push('-');
                }
                kebab.push(c.to_ascii_lowercase());
            }
            assert_eq!(
                &kebab, name,
                "variant {variant}'s tag is not its operation's name"
            );
            assert!(
                seen.insert(*name),
                "two machine operations are named {name}"
            );
            assert_ne!(*name, "status", "`status` is every machine's own binding");
        }
        assert_eq!(MACHINE_BINDINGS.len(), MACHINE_VARIANTS.len() + 1);
    }

    /// `create-machine --host` is new: an older client's request (no `host`) still reads,
    /// and a request for the boss's own host is written as before, so an older daemon
    /// (which refuses unknown fields) still takes it.
    #[test]
    fn create_machine_without_a_host_is_the_older_request() {
        let old = r#"{"op":"create-machine","name":"web-1","provider":null}"#;
        let request: Request = serde_json::from_str(old).unwrap();
        assert_eq!(
            request,
            Request::CreateMachine {
                name: "web-1".parse().unwrap(),
                provider: None,
                host: None,
                progress: Default::default(),
            }
        );
        assert_eq!(serde_json::to_string(&request).unwrap(), old);
    }
}
