//! The actors of gobs-app (all `#[define_actor]`, listed in [`env::app_env`]), and where
//! their vats come from.
//!
//! - [`boss`]: the [`boss::Boss`], which keeps machine records and drives providers.
//! - [`hob`]: the boss's [`hob::HobServerPresence`], its one-time [`hob::Registration`]
//!   capabilities, and each in-process machine's [`hob::HobClientPresence`].
//! - [`env`](mod@env): the persistence env; [`vats`]: the persistent vats; [`reason`]: an error as
//!   people read it.

pub mod boss;
pub mod env;
pub mod hob;
pub mod reason;
pub mod vats;
