//! [`FakeBackend`]: an in-memory [`Backend`] for unit tests of the service and the daemon.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::backend::{Backend, BackendError, MachineInfo, MachineStatus, ProviderInfo, RunOutput};

/// Machines in a map; providers `dummy` and `local`; `run` echoes its argv.
#[derive(Debug, Default)]
pub struct FakeBackend {
    state: Mutex<FakeState>,
}

#[derive(Debug)]
pub struct FakeState {
    pub machines: BTreeMap<String, MachineInfo>,
    pub providers: Vec<String>,
    pub closed: bool,
}

impl Default for FakeState {
    fn default() -> FakeState {
        FakeState {
            machines: BTreeMap::new(),
            providers: vec!["dummy".into(), "local".into()],
            closed: false,
        }
    }
}

impl FakeBackend {
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
    fn create_machine(&self, name: &str, provider: &str) -> Result<MachineInfo, BackendError> {
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
        };
        st.machines.insert(name.to_string(), info.clone());
        Ok(info)
    }

    fn list_machines(&self) -> Result<Vec<MachineInfo>, BackendError> {
        let st = self.state();
        Ok(st.machines.values().cloned().collect())
    }

    fn machine(&self, name: &str) -> Result<MachineInfo, BackendError> {
        let st = self.state();
        st.get(name).cloned()
    }

    fn run(&self, name: &str, command: &[String]) -> Result<RunOutput, BackendError> {
        let st = self.state();
        st.get(name)?;
        Ok(RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: format!("{}\n", command.join(" ")),
            stderr: String::new(),
        })
    }

    fn destroy_machine(&self, name: &str) -> Result<MachineInfo, BackendError> {
        let mut st = self.state();
        let info = st.get(name)?.clone();
        st.machines.remove(name);
        Ok(info)
    }

    fn providers(&self) -> Result<Vec<ProviderInfo>, BackendError> {
        let st = self.state();
        Ok(st
            .providers
            .iter()
            .map(|name| ProviderInfo {
                name: name.clone(),
                kind: "fake".into(),
                default: false,
            })
            .collect())
    }

    fn close(&mut self) -> Result<(), BackendError> {
        self.state().closed = true;
        Ok(())
    }
}
