//! What a machine operation is: a typed value ([`MachineOp`]) that carries everything the
//! layers between the command line and the machine need to know of it — its name, its
//! checks, its time limit, its form on the hob wire, the bounds on its answer, and the words
//! of its errors. Those layers pass it along with its type forgotten, as a
//! [`MachineCall`](super::MachineCall) (in [`crate::ops`], beside the list that makes
//! requests of it): the daemon, the backend, the boss, the capability call, the machine
//! actor and the gateway are written once for every operation.
//!
//! A machine does an operation in one place: the hob-client in
//! [`crate::hob_net`]'s `machine_ops`; a machine of the gobs-app process (local, dummy)
//! in its actor's [`MachineActor::serve`](crate::providers::MachineActor::serve).

use std::any::Any;
use std::fmt;
use std::time::Duration;

use gobs_ocapn::captp::Term;

use crate::hob_net::answers::Call;
use crate::model::{BackendError, MachineName};

/// A machine's reply to an operation, its type forgotten ([`MachineOp::Reply`] inside).
pub type Reply = Box<dyn Any + Send>;

/// One operation a machine does for the boss. Implemented once per operation, in
/// `ops/<operation>.rs`; the value is the request itself (it derives the command line's
/// arguments and the control socket's form).
pub trait MachineOp: fmt::Debug + Send + Sync + 'static {
    /// Its name: the binding a machine's hob client exposes it as, and the method on the
    /// hob wire (`put-file`).
    const NAME: &'static str;
    /// Whether only machines that copy files do it
    /// ([`MachineActor::FILES`](crate::providers::MachineActor::FILES)).
    const ON_FILES: bool = false;
    /// What the machine is given, read back from the wire.
    type Args;
    /// What the machine answers.
    type Reply: Send + 'static;
    /// What the user gets.
    type Answer;

    /// The machine it is for.
    fn machine(&self) -> &MachineName;

    /// Refuses a request the operation cannot do, before anything is sent; the boss checks,
    /// whoever asks.
    fn check(&self) -> Result<(), BackendError> {
        Ok(())
    }

    /// The time limit the request asks for the work on the machine, if any.
    fn time_limit(&self) -> Option<Duration> {
        None
    }

    /// The call as the boss waits for it; `default_limit` is the machine's time limit for
    /// work the request gives none.
    fn call(&self, default_limit: Duration) -> Call {
        let _ = default_limit;
        Call::answer_only(Self::NAME)
    }

    /// Its arguments on the hob wire, after the method symbol.
    fn args(&self, default_limit: Duration) -> Vec<Term>;

    /// Reads the arguments back, on the machine; refuses what breaks the operation's bounds.
    fn read_args(args: &[Term]) -> Result<Self::Args, String>;

    /// A reply as the machine sends it.
    fn reply_term(reply: &Self::Reply) -> Term;

    /// Reads a machine's reply, bounded by the boss whatever the machine sent.
    fn read_reply(answer: &Term) -> Result<Self::Reply, String>;

    /// What the user gets for `reply`.
    fn answer(&self, reply: Self::Reply) -> Self::Answer;

    /// What failed, for the error that says why (`cannot run the command on machine m1`).
    fn failed(&self) -> String;

    /// Whether it only reads the machine, so that asking again after a lost answer is safe.
    const ONLY_READS: bool = false;

    /// What the user is told when the daemon ended before answering (and the operation does
    /// not only read): what may have happened, and how to find out.
    fn when_lost(&self) -> String {
        format!(
            "gobs-app cannot know whether `{}` took effect on machine {}; check the machine \
             before running it again",
            Self::NAME,
            self.machine()
        )
    }

    /// What a machine that only pretends (the `dummy` provider's, the tests' fake backend)
    /// replies. Default: it does not pretend this operation.
    fn pretend(&self) -> Result<Self::Reply, String> {
        Err(format!(
            "machine {} only pretends, and does not pretend `{}`",
            self.machine(),
            Self::NAME
        ))
    }

    /// The request in words, for a pretending machine's history (a command: its words).
    fn shown(&self) -> Vec<String> {
        vec![Self::NAME.to_string()]
    }
}
