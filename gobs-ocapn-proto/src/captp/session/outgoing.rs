//! Messages this node sends on a session: deliveries, listens and answer releases, in the
//! labels the peer understands.

use super::exports::ThirdParty;
use super::{Session, State};
use crate::captp::ops;
use crate::captp::{CaptpError, Labels, LocalRef, RemoteRef, Term};
use crate::syrup::{self, Value};

/// The most `op:gc-answer`s a session keeps waiting for its next message: past it they
/// go out at once, so a quiet session holds at most this many answers on its peer.
pub const MAX_DEFERRED_GC_ANSWERS: usize = 64;

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
        let (label, p) = self.parts();
        Value::record(label, vec![p.into()])
    }

    fn parts(self) -> (&'static str, u64) {
        match self {
            OutTarget::Export(p) => ("desc:export", p),
            OutTarget::Answer(p) => ("desc:answer", p),
        }
    }

    /// The bytes of [`OutTarget::to_value`], written without building it.
    fn encode_into(self, out: &mut Vec<u8>) {
        let (label, p) = self.parts();
        syrup::open_record(label, out);
        syrup::encode_uint(p, out);
        syrup::close_record(out);
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
        // Every far call is one: it is written straight to the output, the bytes
        // `<op:deliver to args answer resolve-me>` would encode to; its arguments and
        // resolver go first to a buffer of their own, so that what cannot be written
        // leaves nothing half-written.
        let mut parts = std::mem::take(&mut self.scratch);
        parts.clear();
        let written = self.args_into(args, tp, &mut parts).and_then(|args_end| {
            match resolve_me {
                Some(r) => self.export_term_into(&Term::local(r), tp, &mut parts)?,
                None => parts.push(b'f'),
            }
            Ok(args_end)
        });
        let args_end = match written {
            Ok(end) => end,
            Err(e) => {
                self.scratch = parts;
                return Err(e);
            }
        };
        let answer = want_answer.then(|| {
            let p = self.next_question;
            self.next_question += 1;
            p
        });
        self.write_with(|out| {
            syrup::open_record("op:deliver", out);
            to.encode_into(out);
            out.extend_from_slice(&parts[..args_end]);
            match answer {
                Some(p) => syrup::encode_uint(p, out),
                None => out.push(b'f'),
            }
            out.extend_from_slice(&parts[args_end..]);
            syrup::close_record(out);
        });
        self.scratch = parts;
        Ok(answer)
    }

    /// Writes `args` as the list of a message's arguments to `out`; returns where it ends.
    fn args_into(
        &mut self,
        args: &[Term],
        tp: ThirdParty<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, CaptpError> {
        out.push(b'[');
        for t in args {
            self.export_term_into(t, tp, out)?;
        }
        out.push(b']');
        Ok(out.len())
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
        // Every answer to a far call is one: written straight to the output, as for
        // `send_deliver`.
        let mut parts = std::mem::take(&mut self.scratch);
        parts.clear();
        if let Err(e) = self.args_into(args, tp, &mut parts) {
            self.scratch = parts;
            return Err(e);
        }
        let suite = self.labels == Labels::Suite;
        self.write_with(|out| {
            syrup::open_record(
                if suite {
                    "op:deliver-only"
                } else {
                    "op:deliver"
                },
                out,
            );
            to.encode_into(out);
            out.extend_from_slice(&parts);
            if !suite {
                out.extend_from_slice(b"ff");
            }
            syrup::close_record(out);
        });
        self.scratch = parts;
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
        self.write_with(|out| gc_answer_into(label, pos, out));
        Ok(())
    }

    /// Lets go of the answer at `pos`: sends `op:gc-answer` now, or, if the session
    /// defers them ([`SessionConfig::defer_gc_answers`](crate::captp::SessionConfig)),
    /// with the next message, or once [`MAX_DEFERRED_GC_ANSWERS`] wait. Returns whether it
    /// waits (the host then flushes it when the session goes quiet).
    pub fn release_answer(&mut self, pos: u64) -> Result<bool, CaptpError> {
        if !self.config.defer_gc_answers {
            return self.send_gc_answer(pos).map(|()| false);
        }
        self.check_open()?;
        self.deferred_gc.push(pos);
        if self.deferred_gc.len() >= MAX_DEFERRED_GC_ANSWERS {
            self.flush_gc_answers();
        }
        Ok(!self.deferred_gc.is_empty())
    }

    /// Writes the `op:gc-answer`s that wait, if any.
    pub fn flush_gc_answers(&mut self) {
        if self.deferred_gc.is_empty() {
            return;
        }
        let label = ops::gc_answer_label(self.labels);
        for pos in std::mem::take(&mut self.deferred_gc) {
            gc_answer_into(label, pos, &mut self.out);
        }
    }
}

/// `<label [pos]>`: one `op:gc-answer` (a caller that calls again sends one with every
/// call), written without building its value.
fn gc_answer_into(label: &str, pos: u64, out: &mut Vec<u8>) {
    syrup::open_record(label, out);
    out.push(b'[');
    syrup::encode_uint(pos, out);
    out.push(b']');
    syrup::close_record(out);
}
