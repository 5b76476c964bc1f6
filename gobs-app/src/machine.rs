//! What every machine has, whatever its provider: the standard capabilities it binds in its
//! hob client (`status`, a read-only [`StatusFacet`], and `run`, the machine itself), and
//! how the boss runs a command through the `run` capability without knowing the machine's
//! type ([`run_capability`]).

use gobs_runtime::{AnyRef, Error, Promise, Ref, Value, define_actor};
use serde::{Deserialize, Serialize};

use crate::backend::RunOutput;
use crate::dummy::DummyMachine;
use crate::hob::HobClientPresence;
use crate::process::LocalMachine;
use crate::promises::reason;

/// The machine actor of any provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MachineRef {
    /// A [`DummyMachine`].
    Dummy(Ref<DummyMachine>),
    /// A [`LocalMachine`] of the process provider.
    Local(Ref<LocalMachine>),
}

impl MachineRef {
    /// The machine `capability` refers to, if it is one of the kinds above.
    pub fn from_value(capability: &Value) -> Option<MachineRef> {
        let Value::Ref(any) = capability else {
            return None;
        };
        Self::from_any(any)
    }

    fn from_any(any: &AnyRef) -> Option<MachineRef> {
        any.downcast::<DummyMachine>()
            .map(MachineRef::Dummy)
            .or_else(|| any.downcast::<LocalMachine>().map(MachineRef::Local))
    }

    /// The machine's status, by a near call (same vat only).
    pub fn status(&self) -> Result<String, Error> {
        match self {
            MachineRef::Dummy(m) => m.call().status(),
            MachineRef::Local(m) => m.call().status(),
        }
    }
}

impl From<MachineRef> for Value {
    fn from(m: MachineRef) -> Value {
        match m {
            MachineRef::Dummy(m) => m.into(),
            MachineRef::Local(m) => m.into(),
        }
    }
}

/// The `status` capability: reads the machine's status and can do nothing else (holding it
/// does not let you run commands).
#[define_actor]
#[derive(Debug)]
pub struct StatusFacet {
    machine: MachineRef,
}

#[define_actor]
impl StatusFacet {
    /// The machine's status (`running`, ...).
    pub fn status(&self) -> Result<String, Error> {
        self.machine.status()
    }
}

/// Binds machine `machine`'s standard capabilities in its hob client: `status` (a
/// [`StatusFacet`]) and `run` (the machine). Call inside a turn of the machine's vat.
pub fn bind_standard(client: &Ref<HobClientPresence>, machine: MachineRef) -> Result<(), Error> {
    let status = gobs_runtime::try_spawn(StatusFacet {
        machine: machine.clone(),
    })?;
    client.call().bind("status".into(), status.into())?;
    client.call().bind("run".into(), machine.into())
}

/// Runs `command` through a machine's `run` capability. Call inside a turn.
///
/// Machines of the known kinds are called directly (a [`LocalMachine`] answers later, from
/// off its vat); any other actor is called by name (`run(command: Vec<String>)`, answering a
/// [`RunOutput`]), so new machine kinds work without the boss knowing them.
pub fn run_capability(
    capability: Value,
    command: Vec<String>,
) -> Promise<Result<RunOutput, String>> {
    let unreachable = |e: Error| format!("the machine did not answer: {}", reason(&e));
    let Value::Ref(any) = capability else {
        return Promise::fulfilled(Err(
            "the machine's `run` binding is not a capability".to_string()
        ));
    };
    match MachineRef::from_any(&any) {
        Some(MachineRef::Dummy(m)) => m.send().run(command).then(move |r| r.map_err(unreachable)),
        Some(MachineRef::Local(m)) => m
            .send()
            .run(command)
            .then(move |r| r.unwrap_or_else(|e| Err(unreachable(e)))),
        None => {
            let args = match rmp_serde::to_vec(&(command,)) {
                Ok(args) => args,
                Err(e) => {
                    return Promise::fulfilled(Err(format!("cannot encode the command: {e}")));
                }
            };
            any.invoke("run", args).then(move |answer| {
                let bytes = answer.map_err(unreachable)?;
                rmp_serde::from_slice::<RunOutput>(&bytes).map_err(|e| {
                    format!("the machine's `run` answered something else than a run's output: {e}")
                })
            })
        }
    }
}
