//! What the boss reports of a machine: its info with the capabilities it exposes and
//! whether its session is up, and a machine's answer or the error that says what failed.

use gobs_runtime::{Error, Promise};

use super::records::Reached;
use crate::actors::reason::reason;
use crate::hob_net::boss_gateway::BossGateway;
use crate::hob_net::gateway::Reach;
use crate::model::{BackendError, MachineInfo, MachineStatus};
use crate::providers::capabilities::standard_binding_names;

/// A machine's answer to the boss, or the error saying `what` failed and why.
pub(super) fn settled<T>(
    answer: Result<Result<T, String>, Error>,
    what: impl FnOnce() -> String,
) -> Result<T, BackendError> {
    match answer {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(why)) => Err(BackendError::provider(format!("{}: {why}", what()))),
        Err(e) => Err(BackendError::provider(format!(
            "{}: {}",
            what(),
            reason(&e)
        ))),
    }
}

/// `info`, with the names of the capabilities the machine exposes (asked of its hob
/// client; a network machine's actor serves the standard ones).
pub(super) fn with_bindings(
    info: MachineInfo,
    reached: Option<Reached>,
    gateway: Option<&BossGateway>,
) -> Promise<MachineInfo> {
    let mut info = reach_checked(info, gateway);
    let Some(reached) = reached else {
        return Promise::fulfilled(info);
    };
    let vat = match &reached {
        Reached::Client(client) => client.vat(),
        Reached::Machine(machine) => machine.vat(),
    };
    if let Some(why) = gobs_runtime::Registry::current().and_then(|r| r.broken_reason(vat.name())) {
        info.status = MachineStatus::Failed;
        info.error = Some(format!(
            "broken: its vat {:?} cannot be restored: {why}; remove it with `gobs-app \
             destroy-machine {}`",
            vat.name(),
            info.name
        ));
        return Promise::fulfilled(info);
    }
    let names = match reached {
        Reached::Client(client) => client.send().binding_names(),
        Reached::Machine(machine) => match standard_binding_names(&machine) {
            Ok(names) => Promise::fulfilled(names),
            Err(e) => Promise::broken(e),
        },
    };
    names.then(move |names| {
        match names {
            Ok(names) => info.bindings = names,
            Err(e) => {
                info.error.get_or_insert_with(|| {
                    format!("cannot reach the machine's hob client: {}", reason(&e))
                });
            }
        }
        info
    })
}

/// `info`, `unreachable` if it is running but its session with the boss is down, with
/// the attaches refused as conflicts if there were any (and no other error).
pub(super) fn reach_checked(mut info: MachineInfo, gateway: Option<&BossGateway>) -> MachineInfo {
    let gateway = gateway.and_then(BossGateway::running);
    if info.error.is_none() {
        info.error = gateway.as_ref().and_then(|g| g.conflict(&info.name));
    }
    if info.status == MachineStatus::Running
        && let Some(Reach::Down(since)) = gateway.and_then(|g| g.reach(&info.name))
    {
        info.status = MachineStatus::Unreachable;
        info.error = Some(format!(
            "unreachable since {}: the session with its hob-client is down; it reconnects \
             by itself once the machine runs again",
            humantime::format_rfc3339_seconds(since)
        ));
    }
    info
}
