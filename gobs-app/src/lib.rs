//! gobs-app: a boss that creates machines through providers, and hob presences, with a
//! command line and a daemon. One room per concept:
//!
//! - [`actors`]: the boss, hob presences and the standard machine capabilities, their
//!   persistence env and their vats.
//! - [`providers`]: the provider interface and lifecycle, and the providers (`dummy`,
//!   `local`).
//! - [`model`]: machines, providers, run output and errors, as every layer sees them.
//! - [`files`]: copying files onto and off machines: their bytes, modes and limits.
//! - [`ops`]: the operations, listed once; the command line, the protocol and the backend
//!   trait are written out from that list.
//! - [`backend`]: the boundary between the command line / daemon and the actors.
//! - [`cli`]: the command line, what each command does, and printing.
//! - [`daemon`]: the server on the control socket, its protocol and the state lock.
//! - [`config`]: the config file and the state directory.
//! - [`state`]: operating the store itself (`gobs-app state …`): salvage, inspection,
//!   upgrade checks.
//! - [`hob_net`]: hob over OCapN: the boss's gateway and `gobs-app hob-client`.
//! - [`hosts`]: machines on other hosts: `gobs-app agent`, enrolment, the boss's fleet.
//! - [`events`]: the event log (machines' state changes, operators' commands).
//! - [`metrics`]: Prometheus metrics; [`web`]: the daemon's HTTP side (metrics, dashboard).
//! - [`error`]: the command line's errors ([`error::AppError`]).
//! - [`child_fds`]: what a child process must not keep of ours (the state locks).
//! - [`tty`]: the terminal a `run -t` asks for on the machine, and its size's changes.

pub mod actors;
pub mod backend;
pub mod child_fds;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod error;
pub mod events;
pub mod files;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hob_net;
pub mod hosts;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod progress;
pub mod providers;
pub mod run_io;
pub mod shares;
pub mod state;
mod text;
pub mod tty;
pub mod web;

pub use error::AppError;
