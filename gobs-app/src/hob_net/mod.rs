//! hob over the network: machines whose hob-client runs on the machine itself, as its own
//! process, and registers with the boss over OCapN.
//!
//! - [`wire`]: the messages and their bounds.
//! - [`answers`]: what the boss makes of a machine's answers (deadlines, output bounds).
//! - [`boss_gateway`]: the boss's gateway as the capability the backend passes to what
//!   needs it (one per boss, started when machines first need it).
//! - [`gateway`]: the boss's OCapN node, its one-time registration and attach objects, and
//!   how the boss reaches a machine's bindings and sees its session go down and come back.
//! - `table`: the rows of the gateway's table of machines, swiss numbers and credentials.
//! - `table_store`: the table, kept in the boss's registry.
//! - `registration`: the one-time object a machine registers through.
//! - `reach`: how each machine's session stands, and the calls carried to it.
//! - `attach`: the object a hob-client attaches through, and the gateway's checks.
//! - [`credential`]: how an attach proves it is the machine's own hob-client, and how its
//!   credential rotates (a copy of the machine's state is a conflict, never served).
//! - [`listen`]: where the gateway listens (only where machines reach it).
//! - [`client`]: `gobs-app hob-client`, the machine's side.
//! - `machine_ops`: what the hob-client does for each operation.
//!
//! The gateway's state (its node identity and its table) is in the boss's registry; the
//! registration and attach objects are still node objects
//! ([`gobs_ocapn::node::LocalObject`]) that change the table in its turns. Making them
//! `#[define_actor]` actors exported with `gobs_ocapn::vat::export_actor` (one per
//! machine, their state in their own portraits) is the next step, and changes nothing
//! outside this module; the hob-client's state is still `client.json` beside its node
//! identity.

pub mod answers;
mod attach;
pub mod boss_gateway;
pub mod client;
pub mod credential;
pub mod gateway;
pub mod listen;
mod machine_ops;
mod reach;
mod registration;
pub mod run_sink;
mod run_stream;
mod table;
mod table_store;
pub mod wire;

pub use listen::{Place, parse_listen};

/// Adds the actors hob keeps in the boss's registry (the gateway's table, and the node
/// identity's record) to a persistence env.
pub fn add_actors(
    env: gobs_runtime::EnvBuilder,
) -> Result<gobs_runtime::EnvBuilder, gobs_runtime::Error> {
    Ok(env
        .add::<table_store::GatewayTable>()
        .extend(&gobs_ocapn::persist::env()?))
}
