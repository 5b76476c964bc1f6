//! What every machine is, whatever its provider: the machine operations it does, in one
//! method of [`MachineActor`], and the same call on a machine held as any actor
//! ([`MachineType`], written once for every kind by [`Typed`]).
//!
//! An operation reaches a machine as a [`MachineCall`] (see [`crate::ops`]): the networked
//! machines ([`super::remote_machine`]) pass any of them over the hob wire to the
//! hob-client, which does it; the machines of the gobs-app process do those they know and
//! refuse the others ([`refused`]). The boss asks for it through the capability the
//! machine bound ([`super::capabilities`], [`crate::actors::boss`]).

use std::sync::Arc;

use gobs_runtime::{Actor, AnyRef, Error, Promise, Ref};

use crate::actors::reason::reason;
use crate::model::Cancel;
use crate::ops::MachineCall;
use crate::ops::machine::Reply;

/// What every machine actor does, whatever its provider: the `status` its hob client
/// exposes, and the machine operations it binds.
pub trait MachineActor: Actor {
    /// Whether machines of this kind copy files: their hob client then binds the
    /// operations on files (`put-file`, `get-file`) too. Default: no (a `dummy` machine
    /// has no files).
    const FILES: bool = false;

    /// Whether the machine runs a hob-client of its own, which registered with the boss's
    /// hob gateway while it was provisioned (container, qemu and host machines). The
    /// lifecycle then makes it no in-process hob client, and the boss reaches it through
    /// the machine actor itself. Default: no (an in-process machine, reached through the
    /// hob client that registered with the boss's hob server).
    const NETWORK: bool = false;

    /// The machine's status (`running`, ...).
    fn status(&self) -> String;

    /// Does `call`; the promise answers with the machine's reply (of the call's operation),
    /// or why it could not. Long work stops when `cancel` is set. Called in a turn of the
    /// machine's vat: slow work goes off the vat.
    fn serve(&self, call: Arc<dyn MachineCall>, cancel: Cancel) -> Promise<Result<Reply, String>>;
}

/// What a machine answers an operation its kind does not do.
pub fn refused(call: &dyn MachineCall) -> Promise<Result<Reply, String>> {
    Promise::fulfilled(Err(format!(
        "machine {} is of a kind that does not do `{}`",
        call.machine(),
        call.name()
    )))
}

/// A kind of machine actor, its type forgotten: the calls of [`MachineActor`] on a machine
/// held as any actor. Written once, by [`Typed`], for every kind.
pub trait MachineType: Sync {
    /// Whether `machine` is of this kind.
    fn is(&self, machine: &AnyRef) -> bool;
    /// Whether machines of this kind copy files ([`MachineActor::FILES`]).
    fn files(&self) -> bool;
    /// Its status (a near call: same vat only).
    fn status(&self, machine: &AnyRef) -> Result<String, Error>;
    /// Has it do `call`.
    fn serve(
        &self,
        machine: &AnyRef,
        call: Arc<dyn MachineCall>,
        cancel: Cancel,
    ) -> Promise<Result<Reply, String>>;
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

    fn files(&self) -> bool {
        M::FILES
    }

    fn status(&self, machine: &AnyRef) -> Result<String, Error> {
        Self::typed(machine)?.call_with(|m| m.status())
    }

    fn serve(
        &self,
        machine: &AnyRef,
        call: Arc<dyn MachineCall>,
        cancel: Cancel,
    ) -> Promise<Result<Reply, String>> {
        match Self::typed(machine) {
            Ok(m) => m
                .send_with(move |m| m.serve(call, cancel))
                .flatten()
                .then(|answer| {
                    answer.unwrap_or_else(|e| {
                        Err(format!("the machine did not answer: {}", reason(&e)))
                    })
                }),
            Err(e) => Promise::fulfilled(Err(e.to_string())),
        }
    }
}
