//! How the boss reaches a machine: through the capabilities its hob client registered (one
//! per machine operation, under the operation's name), asked of the client by name, or,
//! for a network machine, through its machine actor, which serves each standard
//! capability itself; and the errors that say why a machine cannot be reached.

use gobs_runtime::{Promise, Value};

use super::{Boss, MachineRecord, Reached};
use crate::actors::reason::reason;
use crate::model::{BackendError, MachineStatus};
use crate::providers;
use crate::providers::capabilities::standard_binding_names;

impl Boss {
    /// What every machine operation goes through: machine `name` must be running; its hob
    /// client is asked for its capability `binding` (a network machine's actor is that
    /// capability), which goes to `work`. A machine without that binding (`on_files`: only
    /// machines that copy files have it), or whose hob client cannot be reached, is an
    /// error that says so.
    pub(super) fn through<T: Send + 'static>(
        &self,
        name: &str,
        binding: &'static str,
        on_files: bool,
        work: impl FnOnce(Value) -> Promise<Result<T, BackendError>> + Send + 'static,
    ) -> Result<Promise<Result<T, BackendError>>, BackendError> {
        let record = self.get(name)?;
        let reached = match (record.status, record.reached()) {
            (MachineStatus::Running, Some(reached)) => reached,
            _ => return Err(BackendError::invalid(not_running(name, record))),
        };
        let missing = self.no_binding(name, record, binding, on_files);
        let name = name.to_string();
        let asked = match reached {
            Reached::Client(client) => client.send().binding(binding.to_string()),
            Reached::Machine(machine) => {
                let bound = standard_binding_names(&machine)
                    .is_ok_and(|names| names.iter().any(|n| n == binding));
                Promise::fulfilled(bound.then(|| Value::Ref(machine)))
            }
        };
        Ok(asked
            .then(move |capability| match capability {
                Ok(Some(capability)) => work(capability),
                Ok(None) => Promise::fulfilled(Err(BackendError::provider(missing))),
                Err(e) => Promise::fulfilled(Err(BackendError::provider(format!(
                    "cannot reach machine {name}'s hob client: {}",
                    reason(&e)
                )))),
            })
            .flatten())
    }

    /// Why machine `name` has no capability `binding`, and what to do; `on_files`: only
    /// machines that copy files have it.
    pub(super) fn no_binding(
        &self,
        name: &str,
        record: &MachineRecord,
        binding: &str,
        on_files: bool,
    ) -> String {
        let plain = format!(
            "machine {name} exposes no `{binding}` capability (its hob client has no \
             `{binding}` binding)"
        );
        if !on_files {
            return plain;
        }
        let kind = self
            .providers
            .get(&record.provider)
            .map(|e| e.provider.kind().to_string());
        match kind {
            Some(kind) if providers::kind_copies_files(&kind) => format!(
                "{plain}: it was created by a gobs-app older than `{binding}`; destroy it and \
                 create it again to copy files to and from it"
            ),
            kind => format!(
                "{plain}: machines of provider {} (kind {}) have no files to copy; machines \
                 of kind {} do",
                record.provider,
                kind.as_deref().unwrap_or("unknown"),
                providers::KINDS
                    .iter()
                    .filter(|k| k.copies_files())
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Why machine `name` cannot run commands now.
fn not_running(name: &str, record: &MachineRecord) -> String {
    match record.status {
        MachineStatus::Creating => format!(
            "machine {name} is still being created; wait until `gobs-app machine {name}` says \
             running"
        ),
        MachineStatus::Destroying => format!("machine {name} is being destroyed"),
        MachineStatus::Failed => format!(
            "machine {name} failed ({}); destroy it and create it again",
            record.error.as_deref().unwrap_or("no reason recorded")
        ),
        MachineStatus::Running | MachineStatus::Stopped | MachineStatus::Unreachable => format!(
            "machine {name} has no management interface (it never registered); destroy it and \
             create it again"
        ),
    }
}
