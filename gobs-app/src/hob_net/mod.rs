//! hob over the network: machines whose hob-client runs on the machine itself, as its own
//! process, and registers with the boss over OCapN.
//!
//! - [`wire`]: the messages and their bounds.
//! - [`answers`]: what the boss makes of a machine's answers (deadlines, output bounds).
//! - [`boss_gateway`]: the boss's gateway as the capability the backend passes to what
//!   needs it (one per boss, started when machines first need it).
//! - [`gateway`]: the boss's OCapN node, its one-time registration and attach objects, and
//!   how the boss reaches a machine's bindings and sees its session go down and come back.
//! - `table_store`: the gateway's table in the boss's registry: per machine, its
//!   registration actor; the spent ones, kept to refuse them with their reason.
//! - `hob_actors`: each machine's registration and attach, as actors in the registry,
//!   exported on the gateway's node: the machine calls their methods by name.
//! - `attach`: how the gateway exports them, and what it does when they tell it (a
//!   session up, a conflict).
//! - `table`: the table as rows, as earlier releases kept it (moved into actors once).
//! - `reach`: how each machine's session stands, and the calls carried to it.
//! - [`credential`]: how an attach proves it is the machine's own hob-client, and how its
//!   credential rotates (a copy of the machine's state is a conflict, never served).
//! - [`listen`]: where the gateway listens (only where machines reach it).
//! - [`client`]: `gobs-app hob-client`, the machine's side.
//! - [`client_state`]: the hob-client's state, in a registry of its own on the machine.
//! - `machine_ops`: what the hob-client does for each operation.
//!
//! The gateway's state is in the boss's registry: its node identity, and per machine a
//! `#[define_actor]` registration and attach actor, each holding its own state in its
//! portrait (the machine, its swiss number, used or revoked, the machine's identity and
//! attach credential). Each is bound on the gateway's node to the swiss number the machine
//! was given, so after a restart the same sturdyrefs reach the same actors. They are
//! exported directly (`gobs_ocapn::vat::export_actor_in`), each method given the location
//! the caller's session proved (`gobs_ocapn::vat::Caller`: what the credential is judged
//! by) and answering a refusal as the plain string hob-clients of every release read
//! (`PeerErrors::Text`); an answer leaves once the turn committed (the registry's output
//! gate).
//!
//! This is the one registration of a network machine: the boss's record of it holds the
//! machine actor its provider booted ([`crate::providers::remote_machine`]), which reaches
//! the bindings registered here; it has no in-process hob client
//! ([`crate::actors::hob`] is for the machines of the gobs-app process).
//!
//! The hob-client keeps its state (node identity included) in a registry of its own on
//! the machine ([`client_state`]).
//!
//! **Why the boss saves no far reference to a machine's bindings.** A saved far
//! reference comes back to life by dialling its sturdyref, and the boss cannot dial a
//! machine: machines reach only the boss (a container's bridge rules; qemu's user network,
//! where the host cannot reach the guest at all), and a listener on each machine would be
//! one more door into it. So reconnecting is the machine's move: it keeps the boss's attach
//! sturdyref in its registry and, whenever its session (re)starts, attaches with its
//! bindings, proving itself with its credential. The boss's portraits keep what makes that
//! safe (the machine's identity and credential, in its attach actor); the bindings live as
//! long as the session, and a machine that does not come back shows `unreachable`, as a
//! far reference that cannot be enlivened would.

pub mod answers;
mod attach;
pub mod boss_gateway;
pub mod call;
pub mod client;
pub mod client_state;
pub mod copy_boss;
mod copy_client;
pub mod credential;
pub mod gateway;
mod hob_actors;
pub mod listen;
mod machine_ops;
mod reach;
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
        .add::<table_store::Registrations>()
        .add::<table::EarlierTable>()
        .add::<hob_actors::Registration>()
        .add::<hob_actors::Attach>()
        .extend(&gobs_ocapn::persist::env()?))
}
