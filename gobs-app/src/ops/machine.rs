//! What a machine operation is: a typed value ([`MachineOp`]) that carries everything the
//! layers between the command line and the machine need to know of it — its name, its
//! checks, its time limit, its form on the hob wire, the bounds on its answer, and the words
//! of its errors — and the same, its type forgotten ([`MachineCall`]), which is what those
//! layers pass along: the daemon, the backend, the boss, the capability call, the machine
//! actor and the gateway are written once for every operation.
//!
//! A machine does an operation in one place: the hob-client in
//! [`crate::hob_net`]'s `machine_ops`; a machine of the gobs-app process (local, dummy)
//! in its actor's [`MachineActor::serve`](crate::providers::MachineActor::serve).

use std::any::Any;
use std::fmt;
use std::time::Duration;

use gobs_ocapn::captp::Term;

use super::{Request, Response};
use crate::hob_net::answers::Call;
use crate::hob_net::wire;
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

/// Where a [`MachineOp`] is listed in [`crate::ops`]: how its answer becomes a
/// [`Response`]. Written by the list, never by hand.
pub trait Listed: MachineOp {
    /// `answer` as the operation's response.
    fn response(answer: Self::Answer) -> Response;
    /// The request asking for it (what a boss passes on to a host's agent).
    fn request(&self) -> Request;
}

/// A machine operation, its type forgotten: what every layer between the command line and
/// the machine carries. Implemented for every listed [`MachineOp`].
pub trait MachineCall: fmt::Debug + Send + Sync {
    /// [`MachineOp::NAME`].
    fn name(&self) -> &'static str;
    /// [`MachineOp::ON_FILES`].
    fn on_files(&self) -> bool;
    /// [`MachineOp::machine`].
    fn machine(&self) -> &MachineName;
    /// [`MachineOp::check`].
    fn check(&self) -> Result<(), BackendError>;
    /// [`MachineOp::time_limit`].
    fn time_limit(&self) -> Option<Duration>;
    /// [`MachineOp::call`].
    fn call(&self, default_limit: Duration) -> Call;
    /// The whole message on the hob wire: the method symbol, then [`MachineOp::args`].
    fn message(&self, default_limit: Duration) -> Vec<Term>;
    /// [`MachineOp::read_reply`].
    fn read_reply(&self, answer: &Term) -> Result<Reply, String>;
    /// The response for `reply` ([`MachineOp::answer`]); an error if `reply` is not this
    /// operation's.
    fn respond(&self, reply: Reply) -> Result<Response, String>;
    /// [`MachineOp::failed`].
    fn failed(&self) -> String;
    /// [`MachineOp::ONLY_READS`].
    fn only_reads(&self) -> bool;
    /// [`MachineOp::when_lost`].
    fn when_lost(&self) -> String;
    /// [`MachineOp::pretend`].
    fn pretend(&self) -> Result<Reply, String>;
    /// [`MachineOp::shown`].
    fn shown(&self) -> Vec<String>;
    /// The operation, for a machine that does it itself to find its type.
    fn as_any(&self) -> &dyn Any;
    /// [`Listed::request`].
    fn request(&self) -> Request;
}

impl<O: Listed> MachineCall for O {
    fn name(&self) -> &'static str {
        O::NAME
    }
    fn on_files(&self) -> bool {
        O::ON_FILES
    }
    fn machine(&self) -> &MachineName {
        MachineOp::machine(self)
    }
    fn check(&self) -> Result<(), BackendError> {
        MachineOp::check(self)
    }
    fn time_limit(&self) -> Option<Duration> {
        MachineOp::time_limit(self)
    }
    fn call(&self, default_limit: Duration) -> Call {
        MachineOp::call(self, default_limit)
    }
    fn message(&self, default_limit: Duration) -> Vec<Term> {
        wire::call(O::NAME, self.args(default_limit))
    }
    fn read_reply(&self, answer: &Term) -> Result<Reply, String> {
        O::read_reply(answer).map(|r| Box::new(r) as Reply)
    }
    fn respond(&self, reply: Reply) -> Result<Response, String> {
        let reply = reply.downcast::<O::Reply>().map_err(|_| {
            format!(
                "machine {} answered `{}` with another operation's reply (a fault of its kind \
                 of machine in gobs-app)",
                MachineOp::machine(self),
                O::NAME
            )
        })?;
        Ok(O::response(self.answer(*reply)))
    }
    fn failed(&self) -> String {
        MachineOp::failed(self)
    }
    fn only_reads(&self) -> bool {
        O::ONLY_READS
    }
    fn when_lost(&self) -> String {
        MachineOp::when_lost(self)
    }
    fn pretend(&self) -> Result<Reply, String> {
        MachineOp::pretend(self).map(|r| Box::new(r) as Reply)
    }
    fn shown(&self) -> Vec<String> {
        MachineOp::shown(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn request(&self) -> Request {
        Listed::request(self)
    }
}
