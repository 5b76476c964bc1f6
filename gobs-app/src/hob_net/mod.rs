//! hob over the network: machines whose hob-client runs on the machine itself, as its own
//! process, and registers with the boss over OCapN.
//!
//! - [`wire`]: the messages and their bounds.
//! - [`answers`]: what the boss makes of a machine's answers (deadlines, output bounds).
//! - [`boss_gateway`]: the boss's gateway as the capability the backend passes to what
//!   needs it (one per boss, started when machines first need it).
//! - [`gateway`]: the boss's OCapN node, its one-time registration and attach objects, and
//!   how the boss reaches a machine's bindings and sees its session go down and come back.
//! - `table`: the gateway's table of machines, swiss numbers and credentials.
//! - `registration`: the one-time object a machine registers through.
//! - `reach`: how each machine's session stands, and the calls carried to it.
//! - `attach`: the object a hob-client attaches through, and the gateway's checks.
//! - [`credential`]: how an attach proves it is the machine's own hob-client, and how its
//!   credential rotates (a copy of the machine's state is a conflict, never served).
//! - [`listen`]: where the gateway listens (only where machines reach it).
//! - [`client`]: `gobs-app hob-client`, the machine's side.
//!
//! This is the small adapter the brief of the OCapN work asks for: it speaks through
//! gobs-ocapn's object API ([`gobs_ocapn::node::LocalObject`], [`gobs_ocapn::vat::RemoteObject`]),
//! which carries references today; when by-name calls to gobs actors carry references too,
//! the registration and attach objects can become `#[define_actor]` actors exported with
//! `gobs_ocapn::vat::export_actor`, and nothing outside this module changes.

pub mod answers;
mod attach;
pub mod boss_gateway;
pub mod client;
pub mod credential;
pub mod gateway;
pub mod listen;
mod reach;
mod registration;
mod table;
pub mod wire;

pub use listen::{Place, parse_listen};
