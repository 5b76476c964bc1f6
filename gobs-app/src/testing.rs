//! [`FakeBackend`]: an in-memory [`Backend`] for unit tests of the service and the daemon.

use std::collections::BTreeMap;

use crate::backend::{Backend, BackendError, MachineInfo, MachineStatus, ProviderInfo, RunOutput};

/// Machines in a map; providers `dummy` and `local`; `run` echoes its argv.
#[derive(Debug)]
pub struct FakeBackend {
    pub machines: BTreeMap<String, MachineInfo>,
    pub providers: Vec<String>,
    pub closed: bool,
}

impl Default for FakeBackend {
    fn default() -> FakeBackend {
        FakeBackend {
            machines: BTreeMap::new(),
            providers: vec!["dummy".into(), "local".into()],
            closed: false,
        }
    }
}

impl FakeBackend {
    fn get(&self, name: &str) -> Result<&MachineInfo, BackendError> {
        self.machines.get(name).ok_or_else(|| {
            BackendError::unknown_machine(name, self.machines.keys().map(String::as_str))
        })
    }
}

impl Backend for FakeBackend {
    fn create_machine(&mut self, name: &str, provider: &str) -> Result<MachineInfo, BackendError> {
        if self.machines.contains_key(name) {
            return Err(BackendError::machine_exists(
                name,
                self.machines.keys().map(String::as_str),
            ));
        }
        if !self.providers.iter().any(|p| p == provider) {
            return Err(BackendError::unknown_provider(
                provider,
                self.providers.iter().map(String::as_str),
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
        self.machines.insert(name.to_string(), info.clone());
        Ok(info)
    }

    fn list_machines(&mut self) -> Result<Vec<MachineInfo>, BackendError> {
        Ok(self.machines.values().cloned().collect())
    }

    fn machine(&mut self, name: &str) -> Result<MachineInfo, BackendError> {
        self.get(name).cloned()
    }

    fn run(&mut self, name: &str, command: &[String]) -> Result<RunOutput, BackendError> {
        self.get(name)?;
        Ok(RunOutput {
            exit_code: Some(0),
            signal: None,
            stdout: format!("{}\n", command.join(" ")),
            stderr: String::new(),
        })
    }

    fn destroy_machine(&mut self, name: &str) -> Result<MachineInfo, BackendError> {
        let info = self.get(name)?.clone();
        self.machines.remove(name);
        Ok(info)
    }

    fn providers(&mut self) -> Result<Vec<ProviderInfo>, BackendError> {
        Ok(self
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
        self.closed = true;
        Ok(())
    }
}
