//! [`MachineRoute`]: how the boss's backend reaches a machine — through the host's agent
//! if the machine is on another host, else through the boss's own actors — for the
//! command line's `run`, `put-file`, `get-file` and `machine`, and for the grants of
//! `gobs-app share` ([`crate::shares`]), which take the same path. Blocking.

use std::sync::Arc;
use std::time::Duration;

use gobs_runtime::Ref;

use super::timeouts::{RUN_MARGIN, Timeouts};
use crate::actors::boss::Boss;
use crate::hob_net::boss_gateway::BossGateway;
use crate::hosts::link::FleetLink;
use crate::model::{BackendError, Cancel, MachineInfo, MachineName};
use crate::ops::{MachineCall, Response};
use crate::shares::route::Route;

/// The backend's path to its machines (see the module docs). Cloning gives another handle.
#[derive(Debug, Clone)]
pub struct MachineRoute {
    pub(super) boss: Ref<Boss>,
    pub(super) fleet: FleetLink,
    pub(super) gateway: BossGateway,
    pub(super) timeouts: Timeouts,
}

impl MachineRoute {
    /// Whether machine `name` is on another host than the boss's own.
    pub(super) fn on_host(&self, name: &MachineName) -> Result<bool, BackendError> {
        self.fleet.has_machine(name.as_str(), &self.timeouts)
    }
}

impl Route for MachineRoute {
    fn on_machine(
        &self,
        cancel: &Cancel,
        call: Arc<dyn MachineCall>,
    ) -> Result<Response, BackendError> {
        if self.on_host(call.machine())? {
            return self.fleet.on_machine(&call, &self.timeouts);
        }
        // A backstop only: the machine, and the boss's deadline on it, end the call first.
        // Work with a time limit of its own (`run`) may take as long as its limit.
        let backstop = if call.call(Duration::ZERO).work.is_none() {
            self.timeouts.files
        } else {
            call.time_limit().map_or(self.timeouts.run, |limit| {
                let margin = self.gateway.answer_timeout() + RUN_MARGIN;
                self.timeouts.run.max(limit + margin)
            })
        };
        let asked = self.boss.send().on_machine(call.clone(), cancel.clone());
        match asked.wait_timeout(backstop) {
            Ok(answered) => answered?,
            Err(_still_waiting) => {
                cancel.cancel();
                let raise = call
                    .call(backstop)
                    .work
                    .map(|w| format!("; {}", w.raise))
                    .unwrap_or_default();
                Err(BackendError::provider(format!(
                    "{}: gobs-app stopped waiting after {} and cancelled it{raise}",
                    call.failed(),
                    humantime::format_duration(backstop)
                )))
            }
        }
    }

    fn machine(&self, name: &MachineName) -> Result<MachineInfo, BackendError> {
        if self.on_host(name)? {
            return self.fleet.machine(name.as_str(), &self.timeouts);
        }
        let asked = self.boss.send().machine(name.to_string());
        match asked.wait_timeout(self.timeouts.answer) {
            Ok(answer) => Ok(answer?),
            Err(_still_pending) => Err(BackendError::internal(format!(
                "looking up machine {name} and asking it for its bindings took longer than \
                 {}; the boss may be overloaded or stuck",
                humantime::format_duration(self.timeouts.answer)
            ))),
        }
    }
}
