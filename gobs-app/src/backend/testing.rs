//! [`FakeBackend`]: an in-memory [`Backend`] for unit tests of the daemon and the CLI.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backend::Backend;
use crate::config::human::HumanDuration;
use crate::hosts::model::{HostAction, HostAnswer, HostInfo, HostState, LOCAL_HOST};
use crate::model::{BackendError, Cancel, MachineInfo, MachineName, MachineStatus, ProviderInfo};
use crate::ops::{MachineCall, Response};
use crate::progress::Watch;
use crate::shares::model::{Right, ShareAnswer, ShareInfo, ShareList};

/// Machines in a map; providers `dummy` and `local`; machine operations answered as a
/// pretending machine answers them (`run` echoes its argv).
#[derive(Debug, Default)]
pub struct FakeBackend {
    state: Mutex<FakeState>,
}

#[derive(Debug)]
pub struct FakeState {
    pub machines: BTreeMap<String, MachineInfo>,
    pub providers: Vec<String>,
    pub closed: bool,
    /// Steps a creation reports after its first, each about 200 bytes.
    pub chatter: usize,
    /// Told each machine's name once its creation is done.
    pub made: Option<std::sync::mpsc::Sender<String>>,
}

impl Default for FakeState {
    fn default() -> FakeState {
        FakeState {
            machines: BTreeMap::new(),
            providers: vec!["dummy".into(), "local".into()],
            closed: false,
            chatter: 0,
            made: None,
        }
    }
}

impl FakeBackend {
    /// A backend whose creations report `chatter` more steps, and say on `made` when done.
    pub fn chatty(chatter: usize, made: std::sync::mpsc::Sender<String>) -> FakeBackend {
        let backend = FakeBackend::default();
        {
            let mut st = backend.state();
            st.chatter = chatter;
            st.made = Some(made);
        }
        backend
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FakeState {
    fn get(&self, name: &str) -> Result<&MachineInfo, BackendError> {
        self.machines.get(name).ok_or_else(|| {
            BackendError::unknown_machine(name, self.machines.keys().map(String::as_str))
        })
    }
}

impl Backend for FakeBackend {
    fn create_machine(
        &self,
        _cancel: &Cancel,
        name: MachineName,
        provider: Option<String>,
        host: Option<String>,
        progress: Watch,
    ) -> Result<MachineInfo, BackendError> {
        if let Some(host) = host.filter(|h| h != LOCAL_HOST) {
            return Err(no_hosts(&host));
        }
        let reporter = progress.reporter();
        reporter.step("pretending to make the machine");
        let chatter = self.state().chatter;
        for i in 0..chatter {
            reporter.step(format!("step {i} {}", "x".repeat(180)));
        }
        let (name, provider) = (name.as_str(), provider.as_deref().unwrap_or("dummy"));
        let mut st = self.state();
        if st.machines.contains_key(name) {
            return Err(BackendError::machine_exists(
                name,
                st.machines.keys().map(String::as_str),
            ));
        }
        if !st.providers.iter().any(|p| p == provider) {
            return Err(BackendError::unknown_provider(
                provider,
                st.providers.iter().map(String::as_str),
            ));
        }
        let info = MachineInfo {
            name: name.to_string(),
            provider: provider.to_string(),
            status: MachineStatus::Running,
            created_at: 0,
            bindings: Vec::new(),
            error: None,
            host: None,
        };
        st.machines.insert(name.to_string(), info.clone());
        if let Some(made) = &st.made {
            let _ = made.send(name.to_string());
        }
        Ok(info)
    }

    fn list_machines(&self, _cancel: &Cancel) -> Result<Vec<MachineInfo>, BackendError> {
        let st = self.state();
        Ok(st.machines.values().cloned().collect())
    }

    fn machine(&self, _cancel: &Cancel, name: MachineName) -> Result<MachineInfo, BackendError> {
        let st = self.state();
        st.get(name.as_str()).cloned()
    }

    /// Every machine operation is answered as a machine that only pretends answers it
    /// ([`MachineOp::pretend`](crate::ops::MachineOp::pretend)).
    fn on_machine(
        &self,
        _cancel: &Cancel,
        call: Arc<dyn MachineCall>,
    ) -> Result<Response, BackendError> {
        self.state().get(call.machine().as_str())?;
        call.pretend()
            .and_then(|reply| call.respond(reply))
            .map_err(|e| BackendError::provider(format!("{}: {e}", call.failed())))
    }

    fn hosts(&self, _cancel: &Cancel) -> Result<Vec<HostInfo>, BackendError> {
        Ok(vec![HostInfo {
            name: LOCAL_HOST.to_string(),
            state: HostState::Reachable,
            since: None,
            machines: self.state().machines.len(),
        }])
    }

    fn host(&self, _cancel: &Cancel, action: HostAction) -> Result<HostAnswer, BackendError> {
        let (HostAction::Add { name } | HostAction::Remove { name, .. }) = action;
        Err(no_hosts(&name))
    }

    fn share(
        &self,
        _cancel: &Cancel,
        name: MachineName,
        _allow: Vec<Right>,
        _expires: Option<HumanDuration>,
        _note: Option<String>,
    ) -> Result<ShareAnswer, BackendError> {
        Err(BackendError::invalid(format!(
            "the fake backend shares nothing (asked for machine {name})"
        )))
    }

    fn shares(&self, _cancel: &Cancel, log: bool) -> Result<ShareList, BackendError> {
        Ok(ShareList {
            grants: Vec::new(),
            uses: log.then(Vec::new),
        })
    }

    fn revoke(&self, _cancel: &Cancel, id: String) -> Result<ShareInfo, BackendError> {
        Err(BackendError::new(
            crate::model::ErrorKind::NotFound,
            format!("no share with id {id:?}: no shares were made"),
        ))
    }

    fn destroy_machine(
        &self,
        _cancel: &Cancel,
        name: MachineName,
        progress: Watch,
    ) -> Result<MachineInfo, BackendError> {
        progress
            .reporter()
            .step("pretending to take the machine down");
        let mut st = self.state();
        let info = st.get(name.as_str())?.clone();
        st.machines.remove(name.as_str());
        Ok(info)
    }

    fn events(
        &self,
        _cancel: &Cancel,
        _machine: Option<MachineName>,
        after: u64,
        _wait: bool,
    ) -> Result<crate::events::EventPage, BackendError> {
        Ok(crate::events::EventPage {
            next: after,
            ..Default::default()
        })
    }

    fn web(&self, _cancel: &Cancel) -> Result<crate::web::access::WebAccess, BackendError> {
        Ok(crate::web::access::WebAccess::default())
    }

    fn providers(&self, _cancel: &Cancel) -> Result<Vec<ProviderInfo>, BackendError> {
        let st = self.state();
        Ok(st
            .providers
            .iter()
            .map(|name| ProviderInfo {
                name: name.clone(),
                kind: "fake".into(),
                default: name == "dummy",
            })
            .collect())
    }

    fn close(&mut self) -> Result<(), BackendError> {
        self.state().closed = true;
        Ok(())
    }
}

/// The fake has the boss's own host only.
fn no_hosts(host: &str) -> BackendError {
    BackendError::invalid(format!(
        "the test backend has no host {host:?}, only {LOCAL_HOST:?}"
    ))
}
