//! Delegation: handing out one machine's operations as a capability.
//!
//! `gobs-app share MACHINE --allow run[,get-file,put-file,status] [--expires D] [--note T]`
//! makes a [`saved::Grant`], an attenuated facet of that machine, in the boss's registry
//! ([`saved::ShareBook`], vat `shares`), and publishes it on the boss's node (tcp-tls, the
//! one its host agents reach, listening where `[hosts] listen` says): the `ocapn://` URI it
//! prints is the capability. `gobs-app --connect URI run -- CMD` (and `put-file`,
//! `get-file`, `status`) dials it from anywhere with network reach, with a node of its
//! own made for the call: no daemon socket, no state directory.
//!
//! A grant checks every call (revoked? expired? allowed?) and passes allowed ones along
//! the command line's own path to machines ([`route::Route`], the backend's
//! [`crate::backend::route::MachineRoute`]), so a share of a machine on another host works
//! as one on the boss's. `gobs-app shares` lists the grants (and with `--log`, every use:
//! which grant, what, when, refused or not; the last [`book::MAX_USES`]); `gobs-app revoke
//! ID` refuses a grant from then on and ends its calls in flight. Grants, revocations and
//! the use log are actors of the boss's registry: they survive restarts, and a grant's
//! sturdyref stays the same.
//!
//! **Security.** The URI is a bearer capability: whoever holds it has exactly its rights
//! until it expires or is revoked; hand it over as a secret. A holder reaches the grant's
//! four methods and nothing else of the boss: the machine a request names is replaced by
//! the grant's, and a `run` through a share never gets a terminal or streams. Answers
//! carry the machine's output, bounded as the command line's are.

pub mod book;
pub mod grant;
pub mod link;
pub mod model;
pub mod route;
pub mod saved;
#[cfg(test)]
mod tests;

/// Adds the shares' actors to a persistence env.
pub fn add_actors(env: gobs_runtime::EnvBuilder) -> gobs_runtime::EnvBuilder {
    env.add::<saved::ShareBook>().add::<saved::Grant>()
}
