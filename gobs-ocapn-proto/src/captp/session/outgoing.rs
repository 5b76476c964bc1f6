//! Messages this node sends on a session: deliveries, listens and answer releases, in the
//! labels the peer understands.

use super::exports::ThirdParty;
use super::{Session, State};
use crate::captp::ops;
use crate::captp::{CaptpError, Labels, LocalRef, RemoteRef, Term};
use crate::syrup::Value;

/// Where an outgoing message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutTarget {
    /// An object the peer exported (its position in the peer's table).
    Export(u64),
    /// The answer to one of our earlier `op:deliver`s.
    Answer(u64),
}

impl OutTarget {
    /// The target of a remote reference.
    pub fn of(r: &RemoteRef) -> OutTarget {
        OutTarget::Export(r.position())
    }

    fn to_value(self) -> Value {
        match self {
            OutTarget::Export(p) => Value::record("desc:export", vec![p.into()]),
            OutTarget::Answer(p) => Value::record("desc:answer", vec![p.into()]),
        }
    }
}

impl Session {
    pub(super) fn check_open(&self) -> Result<(), CaptpError> {
        match self.state {
            State::Open(_) => Ok(()),
            State::AwaitingHello => Err(CaptpError::NotOpen),
            State::Aborted => Err(CaptpError::Aborted),
        }
    }

    /// Sends `op:deliver`; with `want_answer`, allocates and returns an answer position for
    /// pipelining.
    pub fn send_deliver(
        &mut self,
        to: OutTarget,
        args: &[Term],
        want_answer: bool,
        resolve_me: Option<LocalRef>,
        tp: ThirdParty<'_>,
    ) -> Result<Option<u64>, CaptpError> {
        self.check_open()?;
        let args = self.export_args(args, tp)?;
        let answer = want_answer.then(|| {
            let p = self.next_question;
            self.next_question += 1;
            p
        });
        let resolve_me = match resolve_me {
            Some(r) => self.export_term(&Term::local(r), tp)?,
            None => Value::Bool(false),
        };
        let op = Value::record(
            "op:deliver",
            vec![
                to.to_value(),
                args,
                answer.map(Value::from).unwrap_or(Value::Bool(false)),
                resolve_me,
            ],
        );
        self.write(&op);
        Ok(answer)
    }

    /// Sends a message that wants no answer (`op:deliver-only` to a peer speaking the
    /// suite's labels, `op:deliver … false false` to one speaking the current ones).
    pub fn send_deliver_only(
        &mut self,
        to: OutTarget,
        args: &[Term],
        tp: ThirdParty<'_>,
    ) -> Result<(), CaptpError> {
        self.check_open()?;
        let args = self.export_args(args, tp)?;
        let op = match self.labels {
            Labels::Suite => Value::record("op:deliver-only", vec![to.to_value(), args]),
            Labels::Current => Value::record(
                "op:deliver",
                vec![to.to_value(), args, Value::Bool(false), Value::Bool(false)],
            ),
        };
        self.write(&op);
        Ok(())
    }

    /// Sends `op:listen` on a remote promise, with the wants-partial flag that Goblins 0.18
    /// and the suite both require (the current spec's two-field form is read, not written).
    pub fn send_listen(
        &mut self,
        to: OutTarget,
        resolver: LocalRef,
        wants_partial: bool,
    ) -> Result<(), CaptpError> {
        self.check_open()?;
        let resolver = self.export_term(&Term::local(resolver), &mut |_| {
            Err(CaptpError::Protocol("resolver is local".into()))
        })?;
        let fields = vec![to.to_value(), resolver, Value::Bool(wants_partial)];
        self.write(&Value::record("op:listen", fields));
        Ok(())
    }

    /// Tells the peer we no longer need the answer at `pos`.
    pub fn send_gc_answer(&mut self, pos: u64) -> Result<(), CaptpError> {
        self.check_open()?;
        let label = ops::gc_answer_label(self.labels);
        self.write(&Value::record(label, vec![Value::List(vec![pos.into()])]));
        Ok(())
    }
}
