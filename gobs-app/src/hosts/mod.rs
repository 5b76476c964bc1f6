//! Machines on many hosts: host agents, and how they enrol.
//!
//! - [`agent`]: `gobs-app agent`, a host's agent: a gobs-app daemon of its own whose
//!   [`host_agent::HostAgent`] its boss reaches over OCapN (tcp-tls).
//! - [`fleet`]: the boss's [`fleet::Fleet`] of hosts, and each host's one-time
//!   [`fleet::Enrolment`], in the boss's registry.
//! - [`link`]: the boss's fleet node and the watcher that pings each agent;
//!   [`fleet_ops`]: the boss's operations on hosts and on their machines.
//! - [`model`]: hosts as the command line shows them.
//!
//! **Enrolment.** `gobs-app host add NAME` makes the host's [`fleet::Enrolment`] and
//! publishes it on the boss's fleet node (listening where `[hosts] listen` says, loopback
//! by default): the `ocapn://` URI it prints is the capability. `gobs-app agent --join URI`
//! calls its one method, `join`, handing over a reference to the agent's `HostAgent`; the
//! enrolment marks itself used in the same turn as the fleet keeps the reference, and
//! refuses every later `join` with its reason (used, and when; revoked by `host remove`).
//! Like a machine's registration, it is a bearer capability that works once: whoever
//! joins first is the host, so hand the URI over as a secret.
//!
//! **Where a host's machines register.** With the agent, never with the boss: the agent
//! is a gobs-app daemon with its own providers and hob gateway, so a machine's hob-client
//! registers over the host's own network with the agent's gateway, exactly as on a single
//! host. Why: a machine is hostile to the boss and to the agent alike, and this way no
//! machine ever holds a reference into the boss, nor needs a route to it; the boss's
//! fleet listener serves agents only (enrolments by their swiss numbers), and an agent's
//! machines reach only the agent's gateway, which admits only registered machines and
//! bounds their answers, as the boss's does. The boss bounds an agent's answers in turn
//! (a CapTP session's frame and string limits; machine answers re-read as control-socket
//! responses).
//!
//! **What a host can do to the boss.** An agent holds nothing of the boss but the spent
//! enrolment: the boss calls it, never the reverse. What an agent answers is data (its
//! machines' records and their answers), shown with the host's name.
//!
//! **Reconnection.** The boss keeps each agent's reference as its sturdyref and dials it
//! (the agent listens on a kept address and port): after either side restarts, the
//! watcher's next ping reaches the agent again, and the host shows `reachable`.
//!
//! Delegation (handing out attenuated machine capabilities) is [`crate::shares`]: its
//! grants are published on the same node.

pub mod agent;
pub mod fleet;
pub mod fleet_ops;
pub mod host_agent;
pub mod link;
pub mod model;

// Refusals of an agent (a taken name, an unknown provider) reach the boss as themselves.
gobs_runtime::far_error!(crate::model::BackendError);

/// Adds the fleet's actors (the boss's and the agents') to a persistence env.
pub fn add_actors(env: gobs_runtime::EnvBuilder) -> gobs_runtime::EnvBuilder {
    env.add::<fleet::Fleet>()
        .add::<fleet::Enrolment>()
        .add::<host_agent::HostAgent>()
}
