//! gobs-app: a boss that creates machines through providers, and hob presences.
//!
//! The command line and its daemon live here too, written against the small
//! [`backend::Backend`] trait, which [`boss_backend::BossBackend`] implements:
//!
//! - [`cli`]: the command line; [`app`]: what each command does.
//! - [`config`]: the config file; [`state_dir`]: where state lives.
//! - [`protocol`]: requests, responses and framing on the control socket.
//! - [`backend`]: the trait, its data and [`backend::open_backend`]; [`service`]: request
//!   rules shared by both modes.
//! - [`daemon`]: the server; [`client`]: daemon or embedded; [`lock`]: the state lock.
//! - [`output`]: text and JSON; [`error`]: [`error::AppError`].
//!
//! The actors (all `#[define_actor]`, listed in [`env::app_env`]):
//!
//! - [`boss`]: the [`boss::Boss`], which keeps machine records and drives providers.
//! - [`hob`]: the boss's [`hob::HobServerPresence`], its one-time
//!   [`hob::Registration`] capabilities, and each machine's [`hob::HobClientPresence`].
//! - [`provider`]: the provider interface and machine lifecycle; [`dummy`] and
//!   [`process`] implement it; [`machine`]: what every machine exposes.
//! - [`boss_backend`]: the [`backend::Backend`] that runs all of them; [`vats`]: where
//!   their vats come from; [`promises`]: promise combinators; [`command`]: running local
//!   commands.

pub mod app;
pub mod backend;
pub mod boss;
pub mod boss_backend;
pub mod cli;
pub mod client;
pub mod command;
pub mod config;
pub mod daemon;
pub mod dummy;
pub mod env;
pub mod error;
pub mod hob;
pub mod lock;
pub mod machine;
pub mod output;
pub mod process;
pub mod promises;
pub mod protocol;
pub mod provider;
pub mod service;
pub mod state_dir;
#[cfg(test)]
mod testing;
pub mod vats;

pub use error::AppError;
