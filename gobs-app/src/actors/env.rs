//! The persistence env of gobs-app: every actor its vats hold, plus actor-lib's
//! ([`common_env`]). A persistent vat saves and restores only the actors its env lists.

use gobs_runtime::{Env, Error, common_env};

use crate::actors::boss::Boss;
use crate::actors::hob::{HobClientPresence, HobServerPresence, Registration};
use crate::events::log::EventLog;
use crate::providers::capabilities::StatusFacet;

/// Name of the env, as errors show it.
pub const APP_ENV: &str = "gobs-app";

/// The env of every gobs-app actor, extending [`common_env`]: the boss, the hob presences,
/// the standard machine capabilities, and each provider's actors (from the provider
/// table, [`crate::providers::KINDS`]).
///
/// ```
/// use gobs_app::actors::{boss::Boss, env::app_env};
/// assert!(app_env().unwrap().contains::<Boss>());
/// ```
pub fn app_env() -> Result<Env, Error> {
    let env = Env::builder(APP_ENV)
        .extend(&common_env())
        .add::<Boss>()
        .add::<HobServerPresence>()
        .add::<Registration>()
        .add::<HobClientPresence>()
        .add::<StatusFacet>()
        .add::<EventLog>();
    let env = crate::hosts::add_actors(crate::hob_net::add_actors(env)?);
    crate::providers::add_actors(crate::shares::add_actors(env)).build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn every_app_actor_is_in_the_env() {
        let env = app_env().unwrap();
        let registered = Env::registered("all").unwrap();
        // The hob-client's record lives in the registry on the machine, not the boss's.
        let on_machines = crate::hob_net::client_state::env().unwrap();
        let app_actors: Vec<&str> = registered
            .entries()
            .iter()
            .map(|e| e.name)
            .filter(|name| name.starts_with("gobs_app::") && on_machines.lookup(name).is_none())
            .collect();
        assert!(app_actors.len() >= 9, "{app_actors:?}");
        for name in app_actors {
            assert!(
                env.lookup(name).is_some(),
                "{name} is missing from app_env()"
            );
        }
        assert!(
            env.lookup("gobs_app::actors::hob::HobClientPresence")
                .is_some()
        );
        assert!(env.contains::<gobs_runtime::actor_lib::GHash>());
    }
}
