//! One CapTP session as a pure state machine: bytes in, [`Event`]s and bytes out.
//!
//! The session owns the per-session tables — exports (ours, with their wire reference
//! counts), imports (theirs, counted for `op:gc-export`), answers (promises at positions
//! the peer chose) — and turns descriptors into [`Term`] references and back. It never
//! touches a socket or a clock: the host feeds it bytes with [`Session::receive`], pulls
//! one event at a time with [`Session::poll_event`] (frames are decoded lazily, so each
//! event sees the tables as the host left them after the previous one), and sends what
//! [`Session::take_output`] returns.
//!
//! Any hostile input — a frame that is not Syrup, too large or too deep, an unknown op, a
//! bad signature, a position that was never handed out — aborts this session with a
//! reason, sends `op:abort`, and leaves every other session alone.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};

use super::keys::{KeyPair, PublicKey, session_id};
use super::ops::{self, CAPTP_VERSION, Op, Target};
use super::term::{ConnId, DropSink, ImportInner, LocalRef, ObjId, Ref, RemoteRef, Term};
use super::{CaptpError, Dialect, Labels, records};
use crate::locator::PeerLocator;
use crate::syrup::{self, Limits, SyrupError, Value};

/// Settings of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Which labels to write where peers disagree: learnt from the peer by default.
    pub dialect: Dialect,
    /// Decoding limits for each frame.
    pub limits: Limits,
    /// Largest frame accepted, in bytes.
    pub max_frame: usize,
    /// What a node does when a peer it already has an open session with opens another.
    pub duplicate_session: DuplicateSession,
    /// Whether a gobs actor's failure reaches peers in full (actor, vat, method list), for
    /// debugging; by default a peer gets the method's own error's kind and message only.
    pub peer_error_detail: bool,
}

/// What to do with a second session from a peer that already has an open one (crossed
/// hellos, both dialling at once, are resolved by the spec's rule either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DuplicateSession {
    /// Abort the new one, as the specification says ("if one does exist the new session
    /// should be aborted"): one session per peer pair keeps references comparable.
    /// A peer that died without closing its connection (a killed VM) is refused until
    /// the old connection ends.
    #[default]
    RefuseNew,
    /// Abort the old one and keep the new (a peer that reconnects is believed).
    ReplaceOld,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            dialect: Dialect::Learn,
            limits: Limits {
                max_len: 1 << 20,
                max_count: 1 << 16,
                max_depth: 32,
            },
            max_frame: 4 << 20,
            duplicate_session: DuplicateSession::RefuseNew,
            peer_error_detail: false,
        }
    }
}

/// What the session asks its host to do.
#[derive(Debug)]
pub enum Event {
    /// The peer's `op:start-session` arrived and checked out.
    Opened {
        /// Where the peer says it is (its signature over this was checked).
        location: Box<PeerLocator>,
        /// The peer's session key.
        remote_key: PublicKey,
    },
    /// Deliver `args` to a local object; tell `resolve_me` the result, and (if
    /// `answer_pos` is set) bind a promise for it with [`Session::bind_answer`] before the
    /// next poll.
    Deliver {
        /// The recipient.
        target: LocalRef,
        /// The arguments.
        args: Vec<Term>,
        /// Where the peer wants the answer promise.
        answer_pos: Option<u64>,
        /// Who to tell the result.
        resolve_me: Option<RemoteRef>,
    },
    /// Tell `resolver` when the local promise `target` settles.
    Listen {
        /// The promise.
        target: LocalRef,
        /// Who to tell.
        resolver: RemoteRef,
        /// Whether a resolution to a promise counts.
        wants_partial: bool,
    },
    /// `op:get`/`op:index`/`op:untag`: the new answer promise (already bound at its
    /// position) is to settle to the selected part of what `target` settles to.
    Select {
        /// The promise (or object) taken apart.
        target: LocalRef,
        /// Which part.
        selector: super::Selector,
        /// The new answer's position (bind it with [`Session::bind_answer`]).
        answer_pos: u64,
    },
    /// The peer released its last reference to a local object we exported.
    ExportReleased(LocalRef),
    /// The peer no longer needs the answer promise at this position.
    AnswerReleased(LocalRef),
    /// The session ended.
    Aborted {
        /// Why.
        reason: String,
        /// Whether the peer ended it (else we did).
        by_peer: bool,
    },
}

#[derive(Debug)]
struct ExportEntry {
    obj: LocalRef,
    count: u64,
}

#[derive(Debug)]
struct ImportEntry {
    wire_count: u64,
    handle: Weak<ImportInner>,
}

#[derive(Debug)]
struct OpenState {
    remote_key: PublicKey,
    remote_location: PeerLocator,
    remote_location_value: Value,
    id: [u8; 32],
}

#[derive(Debug)]
enum State {
    AwaitingHello,
    Open(Box<OpenState>),
    Aborted,
}

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

/// How the host writes a reference that belongs to another session (a third-party
/// handoff): given the reference, the Syrup to put in its place.
pub type ThirdParty<'a> = &'a mut dyn FnMut(&RemoteRef) -> Result<Value, CaptpError>;

/// One CapTP session.
#[derive(Debug)]
pub struct Session {
    conn: ConnId,
    config: SessionConfig,
    keys: KeyPair,
    our_location: Value,
    bootstrap: LocalRef,
    state: State,
    inbuf: Vec<u8>,
    /// How much of `inbuf` has been decoded already.
    inpos: usize,
    out: Vec<u8>,
    events: VecDeque<Event>,
    exports: HashMap<u64, ExportEntry>,
    export_of: HashMap<ObjId, u64>,
    next_export: u64,
    imports: HashMap<u64, ImportEntry>,
    answers: HashMap<u64, LocalRef>,
    next_question: u64,
    labels: Labels,
    drops: DropSink,
    handoff_counts_seen: HashSet<u64>,
    next_handoff_count: u64,
}

impl Session {
    /// A new session on connection `conn`; queues our `op:start-session` at once.
    pub fn new(
        conn: ConnId,
        config: SessionConfig,
        keys: KeyPair,
        our_location: &PeerLocator,
        bootstrap: LocalRef,
    ) -> Session {
        let our_location = our_location.to_value();
        let mut s = Session {
            conn,
            next_question: 1,
            labels: match config.dialect {
                Dialect::Suite => Labels::Suite,
                Dialect::Learn | Dialect::Spec => Labels::Current,
            },
            config,
            keys,
            our_location,
            bootstrap,
            state: State::AwaitingHello,
            inbuf: Vec::new(),
            inpos: 0,
            out: Vec::new(),
            events: VecDeque::new(),
            exports: HashMap::new(),
            export_of: HashMap::new(),
            next_export: 1,
            imports: HashMap::new(),
            answers: HashMap::new(),
            drops: DropSink::new(),
            handoff_counts_seen: HashSet::new(),
            next_handoff_count: 0,
        };
        let sig = s
            .keys
            .sign_value(&Value::record("my-location", vec![s.our_location.clone()]));
        let hello = Value::record(
            "op:start-session",
            vec![
                Value::from(CAPTP_VERSION),
                s.keys.public().to_value(),
                s.our_location.clone(),
                sig,
            ],
        );
        s.write(&hello);
        s
    }

    /// The connection this session runs on.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Whether the session is open (hellos exchanged, not aborted).
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Whether the session has ended.
    pub fn is_aborted(&self) -> bool {
        matches!(self.state, State::Aborted)
    }

    /// The labels this session writes now (learnt from the peer unless configured).
    pub fn labels(&self) -> Labels {
        self.labels
    }

    /// Our key pair in this session.
    pub fn keys(&self) -> &KeyPair {
        &self.keys
    }

    /// The peer's key, once open.
    pub fn remote_key(&self) -> Option<PublicKey> {
        match &self.state {
            State::Open(o) => Some(o.remote_key),
            _ => None,
        }
    }

    /// The peer's locator, once open.
    pub fn remote_location(&self) -> Option<(&PeerLocator, &Value)> {
        match &self.state {
            State::Open(o) => Some((&o.remote_location, &o.remote_location_value)),
            _ => None,
        }
    }

    /// The spec's Session ID, once open.
    pub fn id(&self) -> Option<[u8; 32]> {
        match &self.state {
            State::Open(o) => Some(o.id),
            _ => None,
        }
    }

    /// Our Public Identifier in this session.
    pub fn our_side_id(&self) -> [u8; 32] {
        self.keys.public().side_id()
    }

    /// Records a handoff count the peer used in a `desc:handoff-receive`; false when it
    /// was used before (a replay).
    pub fn use_handoff_count(&mut self, count: u64) -> bool {
        self.handoff_counts_seen.insert(count)
    }

    /// The next handoff count for a `desc:handoff-receive` we send on this session.
    pub fn next_handoff_count(&mut self) -> u64 {
        let c = self.next_handoff_count;
        self.next_handoff_count += 1;
        c
    }

    /// Feeds bytes read from the connection.
    pub fn receive(&mut self, bytes: &[u8]) {
        if !self.is_aborted() {
            // Drop what was decoded before appending (one move per read, not per frame).
            if self.inpos > 0 {
                self.inbuf.drain(..self.inpos);
                self.inpos = 0;
            }
            self.inbuf.extend_from_slice(bytes);
        }
    }

    /// Bytes to send to the peer (empty when there is nothing).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The next event: decodes at most one frame.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.is_aborted() || self.inpos >= self.inbuf.len() {
                return None;
            }
            let pending = &self.inbuf[self.inpos..];
            let (frame, used) = match syrup::decode_prefix(pending, &self.config.limits) {
                Ok(x) => x,
                Err(SyrupError::Incomplete) => {
                    if pending.len() > self.config.max_frame {
                        self.abort(&format!(
                            "frame larger than {} bytes",
                            self.config.max_frame
                        ));
                        continue;
                    }
                    return None;
                }
                Err(e) => {
                    self.abort(&format!("malformed frame: {e}"));
                    continue;
                }
            };
            if used > self.config.max_frame {
                self.abort(&format!(
                    "frame larger than {} bytes",
                    self.config.max_frame
                ));
                continue;
            }
            self.inpos += used;
            if let Err(e) = self.handle_frame(&frame) {
                self.abort(&e.to_string());
            }
        }
    }

    fn write(&mut self, v: &Value) {
        syrup::encode_into(v, &mut self.out);
    }

    /// Ends the session: sends `op:abort` with `reason` and emits [`Event::Aborted`].
    /// Imports held in [`RemoteRef`]s no longer reach anything.
    pub fn abort(&mut self, reason: &str) {
        if self.is_aborted() {
            return;
        }
        tracing::warn!(conn = self.conn.0, reason, "aborting CapTP session");
        self.write(&Value::record("op:abort", vec![Value::from(reason)]));
        self.state = State::Aborted;
        self.inbuf.clear();
        self.inpos = 0;
        self.events.push_back(Event::Aborted {
            reason: reason.to_owned(),
            by_peer: false,
        });
    }

    fn handle_frame(&mut self, frame: &Value) -> Result<(), CaptpError> {
        let op = Op::parse(frame)?;
        if self.config.dialect == Dialect::Learn
            && let Some(labels) = ops::labels_of(frame)
        {
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

    fn local_target(&self, t: Target) -> Result<LocalRef, CaptpError> {
        match t {
            Target::Export(0) => Ok(self.bootstrap),
            Target::Export(p) => self
                .exports
                .get(&p)
                .map(|e| e.obj)
                .ok_or(CaptpError::Position("desc:export", p)),
            Target::Answer(p) => self
                .answers
                .get(&p)
                .copied()
                .ok_or(CaptpError::Position("desc:answer", p)),
        }
    }

    fn handle_op(&mut self, op: Op) -> Result<(), CaptpError> {
        match op {
            Op::DeliverOnly { to, args } => {
                let target = self.local_target(to)?;
                let args = self.import_terms(args)?;
                self.events.push_back(Event::Deliver {
                    target,
                    args,
                    answer_pos: None,
                    resolve_me: None,
                });
            }
            Op::Deliver {
                to,
                args,
                answer_pos,
                resolve_me,
            } => {
                let target = self.local_target(to)?;
                if let Some(p) = answer_pos
                    && self.answers.contains_key(&p)
                {
                    return Err(CaptpError::Protocol(format!(
                        "answer position {p} is already in use"
                    )));
                }
                let resolve_me = resolve_me.map(|v| self.import_resolver(&v)).transpose()?;
                let args = self.import_terms(args)?;
                self.events.push_back(Event::Deliver {
                    target,
                    args,
                    answer_pos,
                    resolve_me,
                });
            }
            Op::Listen {
                to,
                resolve_me,
                wants_partial,
            } => {
                let target = self.local_target(to)?;
                let resolver = self.import_resolver(&resolve_me)?;
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
            Op::GcExports(list) => {
                for (pos, delta) in list {
                    if pos == 0 {
                        continue;
                    }
                    let entry = self
                        .exports
                        .get_mut(&pos)
                        .ok_or(CaptpError::Position("op:gc-export position", pos))?;
                    if delta > entry.count {
                        return Err(CaptpError::Protocol(format!(
                            "op:gc-export releases {delta} references to export {pos}, only {} were sent",
                            entry.count
                        )));
                    }
                    entry.count -= delta;
                    if entry.count == 0 {
                        let obj = entry.obj;
                        self.exports.remove(&pos);
                        self.export_of.remove(&obj.id);
                        self.events.push_back(Event::ExportReleased(obj));
                    }
                }
            }
            Op::GcAnswers(list) => {
                for pos in list {
                    let obj = self
                        .answers
                        .remove(&pos)
                        .ok_or(CaptpError::Position("op:gc-answer position", pos))?;
                    self.events.push_back(Event::AnswerReleased(obj));
                }
            }
            Op::Abort(_) | Op::StartSession { .. } => {}
        }
        Ok(())
    }

    /// Binds the local promise that answers the peer's `op:deliver` at `pos`.
    pub fn bind_answer(&mut self, pos: u64, promise: LocalRef) {
        self.answers.insert(pos, promise);
    }

    fn import_resolver(&mut self, v: &Value) -> Result<RemoteRef, CaptpError> {
        match self.import_term(v.clone())? {
            Term::Ref(Ref::Remote(r)) => Ok(r),
            _ => Err(CaptpError::Malformed(format!(
                "resolve-me is not a desc:import-object or desc:import-promise: {v:?}"
            ))),
        }
    }

    fn import(&mut self, pos: u64, promise: bool) -> RemoteRef {
        let entry = self.imports.entry(pos).or_insert(ImportEntry {
            wire_count: 0,
            handle: Weak::new(),
        });
        entry.wire_count += 1;
        if let Some(inner) = entry.handle.upgrade() {
            return RemoteRef(inner);
        }
        let inner = Arc::new(ImportInner {
            conn: self.conn,
            position: pos,
            promise,
            drops: self.drops.0.clone(),
        });
        entry.handle = Arc::downgrade(&inner);
        RemoteRef(inner)
    }

    fn import_terms(&mut self, args: Vec<Value>) -> Result<Vec<Term>, CaptpError> {
        args.into_iter().map(|a| self.import_term(a)).collect()
    }

    fn import_term(&mut self, v: Value) -> Result<Term, CaptpError> {
        Ok(match v {
            Value::Record(label, args) => {
                match (label.as_symbol(), args.as_slice()) {
                    (Some("desc:import-object"), [p]) => {
                        let p = ops::position(p, "desc:import-object position")?;
                        return Ok(Term::Ref(Ref::Remote(self.import(p, false))));
                    }
                    (Some("desc:import-promise"), [p]) => {
                        let p = ops::position(p, "desc:import-promise position")?;
                        return Ok(Term::Ref(Ref::Remote(self.import(p, true))));
                    }
                    (Some("desc:export"), [p]) => {
                        let p = ops::position(p, "desc:export position")?;
                        return Ok(Term::local(self.local_target(Target::Export(p))?));
                    }
                    (Some("desc:answer"), [p]) => {
                        let p = ops::position(p, "desc:answer position")?;
                        return Ok(Term::local(self.local_target(Target::Answer(p))?));
                    }
                    (Some("desc:sig-envelope"), [signed, _sig])
                        if signed.as_record().map(|r| r.0) == Some("desc:handoff-give") =>
                    {
                        return Ok(Term::Handoff(Value::Record(label, args)));
                    }
                    // A signed handoff-receive is a certificate for the bootstrap object's
                    // withdraw-gift: plain data, the give inside it included.
                    (Some("desc:sig-envelope"), [signed, _sig])
                        if signed.as_record().map(|r| r.0) == Some("desc:handoff-receive") =>
                    {
                        return Ok(Term::from_value(Value::Record(label, args)));
                    }
                    _ => {}
                }
                if let Some((label, fields)) = records::unwrap(&label, &args) {
                    return Ok(Term::Record(
                        Box::new(self.import_term(label)?),
                        self.import_terms(fields)?,
                    ));
                }
                let label = self.import_term(*label)?;
                let args = args
                    .into_iter()
                    .map(|a| self.import_term(a))
                    .collect::<Result<_, _>>()?;
                Term::Record(Box::new(label), args)
            }
            Value::List(l) => Term::List(
                l.into_iter()
                    .map(|a| self.import_term(a))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Dict(d) => Term::Dict(
                d.into_iter()
                    .map(|(k, v)| Ok((self.import_term(k)?, self.import_term(v)?)))
                    .collect::<Result<_, CaptpError>>()?,
            ),
            Value::Set(s) => Term::Set(
                s.into_iter()
                    .map(|a| self.import_term(a))
                    .collect::<Result<_, _>>()?,
            ),
            scalar => Term::Data(scalar),
        })
    }

    fn export(&mut self, obj: LocalRef) -> u64 {
        if obj.id == self.bootstrap.id {
            return 0;
        }
        let pos = match self.export_of.get(&obj.id) {
            Some(p) => *p,
            None => {
                let p = self.next_export;
                self.next_export += 1;
                self.export_of.insert(obj.id, p);
                self.exports.insert(p, ExportEntry { obj, count: 0 });
                p
            }
        };
        if let Some(e) = self.exports.get_mut(&pos) {
            e.count += 1;
        }
        pos
    }

    /// Writes `term` as Syrup for this session: local refs become exports, this session's
    /// imports become `desc:export`s, other sessions' refs go through `third_party`.
    pub fn export_term(
        &mut self,
        term: &Term,
        third_party: ThirdParty<'_>,
    ) -> Result<Value, CaptpError> {
        Ok(match term {
            Term::Data(v) => v.clone(),
            Term::Handoff(v) => v.clone(),
            Term::List(l) => Value::List(
                l.iter()
                    .map(|t| self.export_term(t, third_party))
                    .collect::<Result<_, _>>()?,
            ),
            Term::Set(l) => Value::Set(
                l.iter()
                    .map(|t| self.export_term(t, third_party))
                    .collect::<Result<_, _>>()?,
            ),
            Term::Dict(d) => Value::Dict(
                d.iter()
                    .map(|(k, v)| {
                        Ok((
                            self.export_term(k, third_party)?,
                            self.export_term(v, third_party)?,
                        ))
                    })
                    .collect::<Result<_, CaptpError>>()?,
            ),
            Term::Record(l, a) => {
                let label = self.export_term(l, third_party)?;
                let fields = a
                    .iter()
                    .map(|t| self.export_term(t, third_party))
                    .collect::<Result<_, _>>()?;
                if records::is_protocol_label(&label) {
                    Value::Record(Box::new(label), fields)
                } else {
                    records::wrap(label, fields)
                }
            }
            Term::Ref(Ref::Local(r)) => {
                let pos = self.export(*r);
                let label = if r.promise {
                    "desc:import-promise"
                } else {
                    "desc:import-object"
                };
                Value::record(label, vec![pos.into()])
            }
            Term::Ref(Ref::Remote(r)) if r.conn() == self.conn => {
                Value::record("desc:export", vec![r.position().into()])
            }
            Term::Ref(Ref::Remote(r)) => third_party(r)?,
        })
    }

    fn export_args(&mut self, args: &[Term], tp: ThirdParty<'_>) -> Result<Value, CaptpError> {
        Ok(Value::List(
            args.iter()
                .map(|t| self.export_term(t, tp))
                .collect::<Result<_, _>>()?,
        ))
    }

    fn check_open(&self) -> Result<(), CaptpError> {
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

    /// Records this session's dropped imports in `sink` instead of its own (call before the
    /// session imports anything); the host then drains the sink and hands each session its
    /// positions with [`Session::release_dropped`].
    pub fn with_drop_sink(mut self, sink: DropSink) -> Session {
        self.drops = sink;
        self
    }

    /// Tells the exporter about every import whose last [`RemoteRef`] was dropped since the
    /// last call (one `op:gc-export` carrying them all), for a session with its own drop
    /// sink. Returns how many were released.
    pub fn collect_garbage(&mut self) -> usize {
        let mine: Vec<u64> = self
            .drops
            .drain()
            .into_iter()
            .filter(|(c, _)| *c == self.conn)
            .map(|(_, p)| p)
            .collect();
        self.release_dropped(&mine)
    }

    /// Releases the imports at `dropped` whose last [`RemoteRef`] is gone (a position
    /// imported again since is kept) with one `op:gc-export`. Returns how many.
    pub fn release_dropped(&mut self, dropped: &[u64]) -> usize {
        if dropped.is_empty() || !self.is_open() {
            return 0;
        }
        let mut positions = Vec::new();
        let mut deltas = Vec::new();
        for &pos in dropped {
            let dead = self
                .imports
                .get(&pos)
                .is_some_and(|e| e.handle.strong_count() == 0);
            if dead && let Some(e) = self.imports.remove(&pos) {
                positions.push(Value::from(pos));
                deltas.push(Value::from(e.wire_count));
            }
        }
        let n = positions.len();
        if n > 0 {
            let label = ops::gc_export_label(self.labels);
            self.write(&Value::record(
                label,
                vec![Value::List(positions), Value::List(deltas)],
            ));
        }
        n
    }

    /// Whether this session currently exports `obj`.
    pub fn exports(&self, obj: ObjId) -> bool {
        self.export_of.contains_key(&obj)
    }

    /// The objects this session exports now and the promises it answers with: what the
    /// peer lets go of all at once when the session ends.
    pub fn held_by_peer(&self) -> (Vec<ObjId>, Vec<ObjId>) {
        (
            self.export_of.keys().copied().collect(),
            self.answers.values().map(|r| r.id).collect(),
        )
    }

    /// How many objects this session currently exports (bootstrap excluded).
    pub fn export_count(&self) -> usize {
        self.exports.len()
    }

    /// How many answers to the peer's questions this session keeps (until `op:gc-answers`).
    pub fn answer_count(&self) -> usize {
        self.answers.len()
    }

    /// How many imports this session currently holds.
    pub fn import_count(&self) -> usize {
        self.imports.len()
    }
}
