//! The standard capabilities every in-process machine's hob client binds (`status`, a
//! read-only [`StatusFacet`], and each machine operation under its name, the machine
//! itself; the operations on files only where its kind copies files), and how the boss
//! calls them without knowing the machine's type ([`call_capability`]), through the table
//! of machine actor kinds. A network machine has no in-process client: the boss calls its
//! machine actor as each operation's capability ([`standard_binding_names`]).
//!
//! **Adding a kind of machine actor** is one row of `MACHINE_TYPES` (besides its
//! provider's row in [`super::KINDS`]); a provider whose machines run a hob-client of their
//! own uses [`RemoteMachine`] and needs no row.

use std::sync::Arc;

use gobs_runtime::{AnyRef, Error, Promise, Ref, Value, define_actor};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::model::Cancel;
use crate::ops::MachineCall;
use crate::ops::machine::Reply;
use crate::providers::dummy::DummyMachine;
use crate::providers::local::LocalMachine;
use crate::providers::machine::{MachineType, Typed};
use crate::providers::remote_machine::RemoteMachine;

/// Every kind of machine actor, one row each.
static MACHINE_TYPES: &[&dyn MachineType] = &[
    &Typed::<DummyMachine>::NEW,
    &Typed::<LocalMachine>::NEW,
    &Typed::<RemoteMachine>::NEW,
];

/// The `status` capability: reads the machine's status and can do nothing else (holding it
/// does not let you run commands).
#[define_actor(
    version = 2,
    upgrade(from = 1, with = status_facet_v1),
    aliases = [
        "gobs_app::machine::StatusFacet",
        "gobs_app::providers::machine::StatusFacet"
    ]
)]
#[derive(Debug)]
pub struct StatusFacet {
    machine: AnyRef,
}

#[define_actor]
impl StatusFacet {
    /// The machine's status (`running`, ...).
    pub fn status(&self) -> Result<String, Error> {
        machine_type(&self.machine)?.status(&self.machine)
    }
}

/// A machine as version 1 of the `status` capability saved it.
#[derive(Serialize, Deserialize)]
enum MachineRefV1 {
    /// A dummy machine.
    Dummy(Ref<DummyMachine>),
    /// A local machine.
    Local(Ref<LocalMachine>),
}

/// Status capability 1 → 2: the machine is held as any actor.
fn status_facet_v1((machine,): (MachineRefV1,)) -> (AnyRef,) {
    (match machine {
        MachineRefV1::Dummy(m) => AnyRef::from(m),
        MachineRefV1::Local(m) => AnyRef::from(m),
    },)
}

/// Binds machine `machine`'s standard capabilities in its hob client: `status` (a
/// [`StatusFacet`]) and each machine operation (the machine), those on files only with
/// `files`. Call inside a turn of the machine's vat.
pub fn bind_standard(
    client: &Ref<HobClientPresence>,
    machine: AnyRef,
    files: bool,
) -> Result<(), Error> {
    let status = gobs_runtime::try_spawn(StatusFacet {
        machine: machine.clone(),
    })?;
    client.call().bind("status".into(), status.into())?;
    for (operation, on_files) in crate::ops::MACHINE_OPERATIONS {
        if files || !on_files {
            client
                .call()
                .bind(operation.to_string(), Value::Ref(machine.clone()))?;
        }
    }
    Ok(())
}

/// The names of the standard capabilities of a machine (see [`bind_standard`]), sorted:
/// those a network machine's actor answers for itself, having no in-process hob client.
pub fn standard_binding_names(machine: &AnyRef) -> Result<Vec<String>, Error> {
    let files = machine_type(machine)?.files();
    let operations = crate::ops::MACHINE_OPERATIONS
        .iter()
        .filter(|(_, on_files)| files || !on_files)
        .map(|(operation, _)| operation.to_string());
    let mut names: Vec<String> = std::iter::once("status".to_string())
        .chain(operations)
        .collect();
    names.sort();
    Ok(names)
}

/// Has a machine do `call` through the capability it bound for the call's operation,
/// whatever its kind. Call inside a turn. Long work stops when `cancel` is set.
pub fn call_capability(
    capability: Value,
    call: Arc<dyn MachineCall>,
    cancel: Cancel,
) -> Promise<Result<Reply, String>> {
    match machine_of(capability, call.name()) {
        Ok((machine, kind)) => kind.serve(&machine, call, cancel),
        Err(e) => Promise::fulfilled(Err(e)),
    }
}

/// The machine a capability bound as `binding` is, and its kind.
fn machine_of(
    capability: Value,
    binding: &str,
) -> Result<(AnyRef, &'static dyn MachineType), String> {
    let Value::Ref(machine) = capability else {
        return Err(format!(
            "the machine's `{binding}` binding is not a capability"
        ));
    };
    let kind = machine_type(&machine).map_err(|e| e.to_string())?;
    Ok((machine, kind))
}

/// The row of [`MACHINE_TYPES`] that `machine` is an actor of.
fn machine_type(machine: &AnyRef) -> Result<&'static dyn MachineType, Error> {
    MACHINE_TYPES
        .iter()
        .copied()
        .find(|t| t.is(machine))
        .ok_or_else(|| Error::Dispatch {
            actor: machine.describe(),
            detail: "not a machine of any kind this gobs-app knows".into(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use gobs_runtime::Vat;
    use gobs_runtime::actor_lib::GHash;

    #[test]
    fn a_binding_that_is_no_machine_is_refused_saying_what_it_is() {
        let vat = Vat::spawn("capabilities").unwrap();
        let run: Arc<dyn MachineCall> = Arc::new(crate::ops::Run {
            name: "m1".parse().unwrap(),
            command: vec!["true".into()],
            timeout: None,
            raw: false,
            stream: false,
            terminal: false,
            tty: None,
            io: None,
        });
        let (text, table) = vat
            .run(move || {
                let text = call_capability(Value::Str("run".into()), run.clone(), Cancel::new());
                let table = AnyRef::from(gobs_runtime::spawn(GHash::new()));
                let table = call_capability(Value::Ref(table), run, Cancel::new());
                (text, table)
            })
            .unwrap();
        let err = text.wait().unwrap().unwrap_err();
        assert!(err.contains("`run` binding is not a capability"), "{err}");
        let err = table.wait().unwrap().unwrap_err();
        assert!(err.contains("not a machine of any kind"), "{err}");
    }
}
