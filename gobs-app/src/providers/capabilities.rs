//! The standard capabilities every machine's hob client binds (`status`, a read-only
//! [`StatusFacet`], and `run`, the machine itself; `put-file` and `get-file`, the machine
//! too, where its kind copies files), and how the boss calls them without knowing the
//! machine's type ([`run_capability`], [`put_file_capability`], [`get_file_capability`]),
//! through the table of machine actor kinds.
//!
//! **Adding a kind of machine actor** is one row of `MACHINE_TYPES` (besides its
//! provider's row in [`super::KINDS`]); a provider whose machines run a hob-client of their
//! own uses [`RemoteMachine`] and needs no row.

use gobs_runtime::{AnyRef, Error, Promise, Ref, Value, define_actor};
use serde::{Deserialize, Serialize};

use crate::actors::hob::HobClientPresence;
use crate::files::FileMode;
use crate::model::{Cancel, RunOutput};
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
/// [`StatusFacet`]) and `run` (the machine), and with `files` also `put-file` and
/// `get-file` (the machine). Call inside a turn of the machine's vat.
pub fn bind_standard(
    client: &Ref<HobClientPresence>,
    machine: AnyRef,
    files: bool,
) -> Result<(), Error> {
    let status = gobs_runtime::try_spawn(StatusFacet {
        machine: machine.clone(),
    })?;
    client.call().bind("status".into(), status.into())?;
    if files {
        client
            .call()
            .bind("put-file".into(), Value::Ref(machine.clone()))?;
        client
            .call()
            .bind("get-file".into(), Value::Ref(machine.clone()))?;
    }
    client.call().bind("run".into(), Value::Ref(machine))
}

/// Runs `command` through a machine's `run` capability, whatever its kind. Call inside a
/// turn. The run stops when `cancel` is set.
pub fn run_capability(
    capability: Value,
    command: Vec<String>,
    cancel: Cancel,
) -> Promise<Result<RunOutput, String>> {
    match machine_of(capability, "run") {
        Ok((machine, kind)) => kind.run(&machine, command, cancel),
        Err(e) => Promise::fulfilled(Err(e)),
    }
}

/// Writes a file through a machine's `put-file` capability, whatever its kind. Call inside
/// a turn.
pub fn put_file_capability(
    capability: Value,
    path: String,
    content: Vec<u8>,
    mode: FileMode,
) -> Promise<Result<(), String>> {
    match machine_of(capability, "put-file") {
        Ok((machine, kind)) => kind.put_file(&machine, path, content, mode),
        Err(e) => Promise::fulfilled(Err(e)),
    }
}

/// Reads a file through a machine's `get-file` capability, whatever its kind. Call inside
/// a turn.
pub fn get_file_capability(capability: Value, path: String) -> Promise<Result<Vec<u8>, String>> {
    match machine_of(capability, "get-file") {
        Ok((machine, kind)) => kind.get_file(&machine, path),
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
        let (text, table) = vat
            .run(|| {
                let text =
                    run_capability(Value::Str("run".into()), vec!["true".into()], Cancel::new());
                let table = AnyRef::from(gobs_runtime::spawn(GHash::new()));
                let table = put_file_capability(
                    Value::Ref(table),
                    "/x".into(),
                    Vec::new(),
                    FileMode::DEFAULT,
                );
                (text, table)
            })
            .unwrap();
        let err = text.wait().unwrap().unwrap_err();
        assert!(err.contains("`run` binding is not a capability"), "{err}");
        let err = table.wait().unwrap().unwrap_err();
        assert!(err.contains("not a machine of any kind"), "{err}");
    }
}
