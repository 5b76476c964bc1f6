//! What every machine has, whatever its provider: the standard capabilities its hob client
//! binds (`status`, a read-only [`StatusFacet`], and `run`, the machine itself; `put-file`
//! and `get-file`, the machine too, where its kind copies files), and how the boss uses
//! them without knowing the machine's type ([`run_capability`], [`put_file_capability`],
//! [`get_file_capability`]). Both reach the machine through the provider table
//! ([`super::KINDS`]), so a new kind of machine needs nothing here.

use gobs_runtime::{AnyRef, Error, Promise, Ref, Value, define_actor};

use crate::actors::hob::HobClientPresence;
use crate::files::FileMode;
use crate::model::{Cancel, RunOutput};

/// The `status` capability: reads the machine's status and can do nothing else (holding it
/// does not let you run commands).
#[define_actor(
    version = 2,
    upgrade(from = 1, with = super::legacy::status_facet_v1),
    aliases = ["gobs_app::machine::StatusFacet"]
)]
#[derive(Debug)]
pub struct StatusFacet {
    machine: AnyRef,
}

#[define_actor]
impl StatusFacet {
    /// The machine's status (`running`, ...).
    pub fn status(&self) -> Result<String, Error> {
        super::machine_status(&self.machine)
    }
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

/// Writes a file through a machine's `put-file` capability, whatever its provider. Call
/// inside a turn.
pub fn put_file_capability(
    capability: Value,
    path: String,
    content: Vec<u8>,
    mode: FileMode,
) -> Promise<Result<(), String>> {
    let Value::Ref(machine) = capability else {
        return Promise::fulfilled(Err(
            "the machine's `put-file` binding is not a capability".to_string()
        ));
    };
    super::put_file_on(&machine, path, content, mode)
}

/// Reads a file through a machine's `get-file` capability, whatever its provider. Call
/// inside a turn.
pub fn get_file_capability(capability: Value, path: String) -> Promise<Result<Vec<u8>, String>> {
    let Value::Ref(machine) = capability else {
        return Promise::fulfilled(Err(
            "the machine's `get-file` binding is not a capability".to_string()
        ));
    };
    super::get_file_on(&machine, path)
}

/// Runs `command` through a machine's `run` capability, whatever its provider. Call inside
/// a turn. The run stops when `cancel` is set.
pub fn run_capability(
    capability: Value,
    command: Vec<String>,
    cancel: Cancel,
) -> Promise<Result<RunOutput, String>> {
    let Value::Ref(machine) = capability else {
        return Promise::fulfilled(Err(
            "the machine's `run` binding is not a capability".to_string()
        ));
    };
    super::run_on(&machine, command, cancel)
}
