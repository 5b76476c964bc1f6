//! What every machine is, whatever its provider: the operations it answers, declared once
//! in [`MachineActor`], and the same calls on a machine held as any actor
//! ([`MachineType`], written once for every kind by [`Typed`]).
//!
//! **A machine operation** is a method of [`MachineActor`] (with a default for kinds of
//! machine that lack it) and its call in [`MachineType`]; the machines that have it answer
//! it (the networked ones in [`super::remote_machine`], over the hob wire to the
//! hob-client, [`crate::hob_net`]); the boss asks for it through the capability the machine
//! bound ([`super::capabilities`], [`crate::actors::boss`]), and users through
//! [`crate::ops`].

use gobs_runtime::{Actor, AnyRef, Error, Promise, Ref};

use crate::actors::reason::reason;
use crate::files::FileMode;
use crate::model::{Cancel, RunOutput};

/// What a machine that does not copy files answers `put-file` and `get-file`.
const NO_FILES: &str = "this kind of machine has no files to copy";

/// What every machine actor does, whatever its provider: the `status` and `run` its hob
/// client exposes, and `put-file` and `get-file` for the kinds of machine that copy files.
pub trait MachineActor: Actor {
    /// Whether machines of this kind copy files: their hob client then binds `put-file` and
    /// `get-file`, which reach [`put_file`](MachineActor::put_file) and
    /// [`get_file`](MachineActor::get_file). Default: no (a `dummy` machine has no files).
    const FILES: bool = false;

    /// Writes `content` to `path` on the machine with permission bits `mode`, whole or not
    /// at all. Called in a turn of the machine's vat: slow work goes off the vat. Only
    /// called when [`FILES`](MachineActor::FILES) is true; the default refuses.
    fn put_file(
        &self,
        path: String,
        content: Vec<u8>,
        mode: FileMode,
    ) -> Promise<Result<(), String>> {
        let _ = (path, content, mode);
        Promise::fulfilled(Err(NO_FILES.to_string()))
    }

    /// Reads the file `path` on the machine. Likewise.
    fn get_file(&self, path: String) -> Promise<Result<Vec<u8>, String>> {
        let _ = path;
        Promise::fulfilled(Err(NO_FILES.to_string()))
    }

    /// The machine's status (`running`, ...).
    fn status(&self) -> String;

    /// Runs `command` on the machine; the promise answers with what it printed and how it
    /// ended, or why it could not run. Long runs stop when `cancel` is set. Called in a turn
    /// of the machine's vat: slow work goes off the vat.
    fn run_command(
        &self,
        command: Vec<String>,
        cancel: Cancel,
    ) -> Promise<Result<RunOutput, String>>;
}

/// A kind of machine actor, its type forgotten: the calls of [`MachineActor`] on a machine
/// held as any actor. Written once, by [`Typed`], for every kind.
pub trait MachineType: Sync {
    /// Whether `machine` is of this kind.
    fn is(&self, machine: &AnyRef) -> bool;
    /// Its status (a near call: same vat only).
    fn status(&self, machine: &AnyRef) -> Result<String, Error>;
    /// Runs `command` on it.
    fn run(
        &self,
        machine: &AnyRef,
        command: Vec<String>,
        cancel: Cancel,
    ) -> Promise<Result<RunOutput, String>>;
    /// Writes a file on it.
    fn put_file(
        &self,
        machine: &AnyRef,
        path: String,
        content: Vec<u8>,
        mode: FileMode,
    ) -> Promise<Result<(), String>>;
    /// Reads a file on it.
    fn get_file(&self, machine: &AnyRef, path: String) -> Promise<Result<Vec<u8>, String>>;
}

/// The row of machine actor `M`: `&Typed::<M>::NEW` in the table of
/// [`super::capabilities`].
pub struct Typed<M>(std::marker::PhantomData<fn() -> M>);

impl<M> Typed<M> {
    /// The row.
    pub const NEW: Typed<M> = Typed(std::marker::PhantomData);
}

impl<M: MachineActor> Typed<M> {
    /// `machine` as an `M`; only called on a machine [`is`](MachineType::is) said is one.
    fn typed(machine: &AnyRef) -> Result<Ref<M>, Error> {
        machine.downcast::<M>().ok_or_else(|| Error::Dispatch {
            actor: machine.describe(),
            detail: format!("not a {}", std::any::type_name::<M>()),
        })
    }
}

impl<M: MachineActor> MachineType for Typed<M> {
    fn is(&self, machine: &AnyRef) -> bool {
        machine.downcast::<M>().is_some()
    }

    fn status(&self, machine: &AnyRef) -> Result<String, Error> {
        Self::typed(machine)?.call_with(|m| m.status())
    }

    fn run(
        &self,
        machine: &AnyRef,
        command: Vec<String>,
        cancel: Cancel,
    ) -> Promise<Result<RunOutput, String>> {
        match Self::typed(machine) {
            Ok(m) => answered(
                m.send_with(move |m| m.run_command(command, cancel))
                    .flatten(),
            ),
            Err(e) => Promise::fulfilled(Err(e.to_string())),
        }
    }

    fn put_file(
        &self,
        machine: &AnyRef,
        path: String,
        content: Vec<u8>,
        mode: FileMode,
    ) -> Promise<Result<(), String>> {
        match Self::typed(machine) {
            Ok(m) => answered(
                m.send_with(move |m| m.put_file(path, content, mode))
                    .flatten(),
            ),
            Err(e) => Promise::fulfilled(Err(e.to_string())),
        }
    }

    fn get_file(&self, machine: &AnyRef, path: String) -> Promise<Result<Vec<u8>, String>> {
        match Self::typed(machine) {
            Ok(m) => answered(m.send_with(move |m| m.get_file(path)).flatten()),
            Err(e) => Promise::fulfilled(Err(e.to_string())),
        }
    }
}

/// A machine's answer, or why it gave none.
fn answered<T: Send + 'static>(answer: Promise<Result<T, String>>) -> Promise<Result<T, String>> {
    answer.then(|answer| {
        answer.unwrap_or_else(|e| Err(format!("the machine did not answer: {}", reason(&e))))
    })
}
