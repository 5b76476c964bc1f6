//! The peer's frames: the hello that opens the session, then each op checked against the
//! session's tables and turned into an [`Event`].

use super::{Event, OpenState, Session, State};
use crate::captp::CAPTP_VERSION;
use crate::captp::hot::Hot;
use crate::captp::keys::{PublicKey, session_id};
use crate::captp::ops::{self, Op, Target};
use crate::captp::{CapRef, CaptpError, Dialect, Labels, LocalRef, RemoteRef, Term};
use crate::locator::PeerLocator;
use crate::syrup::Value;

impl Session {
    pub(super) fn handle_frame(&mut self, frame: Value) -> Result<(), CaptpError> {
        let learnt = match self.config.dialect {
            Dialect::Learn => ops::labels_of(&frame),
            _ => None,
        };
        let op = Op::parse_owned(frame)?;
        if let Some(labels) = learnt {
            self.labels = labels;
        }
        match (&self.state, op) {
            (_, Op::Abort(reason)) => {
                self.state = State::Aborted;
                self.inbuf.clear();
                self.inpos = 0;
                self.events.push_back(Event::Aborted {
                    reason,
                    by_peer: true,
                });
                Ok(())
            }
            (
                State::AwaitingHello,
                Op::StartSession {
                    version,
                    pubkey,
                    location,
                    location_sig,
                },
            ) => {
                if version != CAPTP_VERSION {
                    return Err(CaptpError::Version(version));
                }
                let remote_key = PublicKey::from_value(&pubkey)?;
                remote_key
                    .verify_value(
                        &Value::record("my-location", vec![location.clone()]),
                        &location_sig,
                    )
                    .map_err(|_| CaptpError::BadLocationSignature)?;
                let remote_location = PeerLocator::from_value(&location)
                    .map_err(|e| CaptpError::Malformed(e.to_string()))?;
                let id = session_id(&self.keys.public(), &remote_key);
                if self.config.dialect == Dialect::Learn
                    && remote_location.transport == crate::locator::TCP_TESTING_ONLY
                {
                    self.labels = Labels::Suite;
                }
                // The suite numbers answers from 0, the spec from 1; either is valid.
                self.next_question = match self.labels {
                    Labels::Suite => 0,
                    Labels::Current => 1,
                };
                self.state = State::Open(Box::new(OpenState {
                    remote_key,
                    remote_location: remote_location.clone(),
                    remote_location_value: location.clone(),
                    id,
                }));
                self.events.push_back(Event::Opened {
                    location: Box::new(remote_location),
                    remote_key,
                });
                Ok(())
            }
            (State::AwaitingHello, _) => Err(CaptpError::Protocol(
                "the first message must be op:start-session".into(),
            )),
            (State::Open(_), Op::StartSession { .. }) => {
                Err(CaptpError::Protocol("op:start-session sent twice".into()))
            }
            (State::Aborted, _) => Ok(()),
            (State::Open(_), op) => self.handle_op(op),
        }
    }

    pub(super) fn local_target(&self, t: Target) -> Result<LocalRef, CaptpError> {
        match t {
            Target::Export(0) => Ok(self.bootstrap),
            Target::Export(p) => self
                .export_at(p)
                .ok_or(CaptpError::Position("desc:export", p)),
            Target::Answer(p) => self
                .answers
                .get(&p)
                .copied()
                .ok_or(CaptpError::Position("desc:answer", p)),
        }
    }

    /// A hot op, read straight from the bytes (see `captp::hot`), as
    /// [`Session::handle_op`] handles the same op parsed.
    pub(super) fn handle_hot(&mut self, op: Hot) -> Result<(), CaptpError> {
        match op {
            Hot::Deliver {
                to,
                args,
                answer_pos,
                resolve_me,
            } => self.deliver(to, args, answer_pos, |s| {
                Ok(resolve_me.map(|(p, promise)| s.import(p, promise)))
            }),
            Hot::GcAnswers(list) => self.gc_answers(list),
            Hot::GcExports(list) => self.gc_exports(list),
        }
    }

    /// `op:deliver` (or `op:deliver-only`, with neither an answer position nor a
    /// resolver): checked, its resolver (from `resolve_me`) and arguments imported.
    fn deliver(
        &mut self,
        to: Target,
        args: Vec<Value>,
        answer_pos: Option<u64>,
        resolve_me: impl FnOnce(&mut Self) -> Result<Option<RemoteRef>, CaptpError>,
    ) -> Result<(), CaptpError> {
        let target = self.local_target(to)?;
        if let Some(p) = answer_pos
            && self.answers.contains_key(&p)
        {
            return Err(CaptpError::Protocol(format!(
                "answer position {p} is already in use"
            )));
        }
        let resolve_me = resolve_me(self)?;
        let args = self.import_terms(args)?;
        self.events.push_back(Event::Deliver {
            target,
            args,
            answer_pos,
            resolve_me,
        });
        Ok(())
    }

    fn gc_exports(&mut self, list: Vec<(u64, u64)>) -> Result<(), CaptpError> {
        for (pos, delta) in list {
            if pos == 0 {
                continue;
            }
            if let Some(obj) = self.release_export(pos, delta)? {
                self.events.push_back(Event::ExportReleased(obj));
            }
        }
        Ok(())
    }

    fn gc_answers(&mut self, list: Vec<u64>) -> Result<(), CaptpError> {
        for pos in list {
            let obj = self
                .answers
                .remove(&pos)
                .ok_or(CaptpError::Position("op:gc-answer position", pos))?;
            self.events.push_back(Event::AnswerReleased(obj));
        }
        Ok(())
    }

    pub(super) fn handle_op(&mut self, op: Op) -> Result<(), CaptpError> {
        match op {
            Op::DeliverOnly { to, args } => self.deliver(to, args, None, |_| Ok(None))?,
            Op::Deliver {
                to,
                args,
                answer_pos,
                resolve_me,
            } => self.deliver(to, args, answer_pos, |s| {
                resolve_me.map(|v| s.import_resolver(v)).transpose()
            })?,
            Op::Listen {
                to,
                resolve_me,
                wants_partial,
            } => {
                let target = self.local_target(to)?;
                let resolver = self.import_resolver(resolve_me)?;
                self.events.push_back(Event::Listen {
                    target,
                    resolver,
                    wants_partial,
                });
            }
            Op::Select {
                to,
                selector,
                answer_pos,
            } => {
                let target = self.local_target(to)?;
                if self.answers.contains_key(&answer_pos) {
                    return Err(CaptpError::Protocol(format!(
                        "answer position {answer_pos} is already in use"
                    )));
                }
                self.events.push_back(Event::Select {
                    target,
                    selector,
                    answer_pos,
                });
            }
            Op::GcExports(list) => self.gc_exports(list)?,
            Op::GcAnswers(list) => self.gc_answers(list)?,
            Op::Abort(_) | Op::StartSession { .. } => {}
        }
        Ok(())
    }

    /// Binds the local promise that answers the peer's `op:deliver` at `pos`.
    pub fn bind_answer(&mut self, pos: u64, promise: LocalRef) {
        self.answers.insert(pos, promise);
    }

    pub(super) fn import_resolver(&mut self, v: Value) -> Result<RemoteRef, CaptpError> {
        match self.import_term(v)? {
            Term::Ref(CapRef::Remote(r)) => Ok(r),
            other => Err(CaptpError::Malformed(format!(
                "resolve-me is not a desc:import-object or desc:import-promise: {other:?}"
            ))),
        }
    }
}
