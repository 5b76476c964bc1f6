//! The node's logic without I/O: objects, promises and sessions (the bootstrap object is in
//! [`bootstrap`], sturdyrefs and handoffs in [`handoff`], taking swiss numbers back in
//! [`revoke`]).
//!
//! [`Core`] is driven by its shell (`gobs_ocapn::node::Node` runs it on tokio): the shell hands it connections,
//! bytes and dial results, and carries out the [`Action`]s it queues (write bytes, dial a
//! peer, close a connection). Everything here is deterministic and runs on one thread.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::object::{Cx, LocalObject};

mod bootstrap;
mod handoff;
mod revoke;
mod timers;

pub use revoke::{REVOKED_KEPT, RevokeHook};
pub use timers::HELLO_TIMEOUT;

use crate::captp::{
    CaptpError, ConnId, DropSink, DuplicateSession, Event, KeyPair, LocalRef, ObjId, OutTarget,
    Ref, RemoteRef, Selector, Session, SessionConfig, Term,
};
use crate::locator::PeerLocator;
use crate::syrup::Value;
use handoff::gift_for;

/// What the core asks its shell to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the connection.
    Write(ConnId, Vec<u8>),
    /// Open a connection to this peer (its session and hello are already queued under this
    /// id): feed what it reads to [`Core::bytes`], or report a failure with
    /// [`Core::dial_failed`].
    Dial(ConnId, PeerLocator),
    /// Flush, then close the connection.
    Close(ConnId),
}

enum Slot {
    Object(Box<dyn LocalObject>),
    Busy,
    Promise(PromiseSlot),
    Resolver {
        promise: ObjId,
        question: Option<(ConnId, u64)>,
        used: bool,
    },
    Bootstrap(ConnId),
}

/// Told of a swiss number minted for a peer and the object it names (with the core, to
/// look the object up).
pub type MintHook = Box<dyn FnMut(&Core, &[u8], LocalRef) + Send>;

/// Called with a promise's outcome when it settles.
pub type Callback = Box<dyn FnOnce(Result<Term, Term>) + Send>;

/// Called with the core and a promise's outcome when it settles.
pub type CoreCallback = Box<dyn FnOnce(&mut Core, Result<Term, Term>) + Send>;

enum Listener {
    /// Tell a resolver; with `partial`, a resolution to another promise is told too
    /// (op:listen's wants-partial), not only the settled value.
    Notify {
        to: Ref,
        partial: bool,
    },
    /// Settle promise `.1` with the part `.0` selects of the value (op:get/index/untag).
    Select(Selector, ObjId),
    Chain(ObjId),
    Callback(Callback),
    CoreCallback(CoreCallback),
}

struct Queued {
    args: Vec<Term>,
    result: Option<ObjId>,
}

impl Queued {
    /// A message waiting on a promise; the node's objects in it are held meanwhile (a
    /// peer letting go of one must not free it before the message is delivered).
    fn hold(held: &mut HashMap<ObjId, usize>, args: Vec<Term>, result: Option<ObjId>) -> Queued {
        for obj in objects_in(&args) {
            *held.entry(obj).or_default() += 1;
        }
        Queued { args, result }
    }

    /// The objects [`Queued::hold`] held.
    fn held_objects(&self) -> Vec<ObjId> {
        objects_in(&self.args)
    }
}

/// The node's objects (not promises) a message's arguments refer to; no allocation for
/// a message without any.
fn objects_in(args: &[Term]) -> Vec<ObjId> {
    let mut objs = Vec::new();
    for a in args {
        a.for_each_ref(&mut |r| {
            if let Ref::Local(l) = r
                && !l.promise
            {
                objs.push(l.id);
            }
        });
    }
    objs
}

#[derive(Default)]
struct PromiseSlot {
    settled: Option<Result<Term, Term>>,
    listeners: Vec<Listener>,
    queued: Vec<Queued>,
    forward: Option<(ConnId, u64)>,
    /// The connection whose peer will settle it (a remote promise it listens to).
    depends_on: Option<ConnId>,
    /// Made for one incoming message's result, referenced by nothing else: forgotten once
    /// settled and told.
    ephemeral: bool,
}

enum Work {
    Deliver {
        to: Ref,
        args: Vec<Term>,
        result: Option<ObjId>,
        /// The node's objects in `args`, held until the delivery has run.
        held: Vec<ObjId>,
    },
    /// The peer let go of an export or an answer. It waits its turn behind the deliveries
    /// decoded before it: a message the peer sent to the object before releasing it
    /// (pipelined on an answer, then `op:gc-answer` once the answer arrived) must still
    /// find it, even when both come in one read.
    Released { obj: ObjId, answer: bool },
    /// A gift handed over: its hold on the object goes, behind the answer that holds it.
    Unhold(ObjId),
}

/// Something to do on a session once it opens.
enum OnOpen {
    Fetch {
        swiss: Vec<u8>,
        promise: ObjId,
    },
    Withdraw {
        signed_give: Value,
        gifter: ConnId,
        promise: ObjId,
    },
}

struct SessionSlot {
    session: Session,
    dialed: Option<PeerLocator>,
    on_open: Vec<OnOpen>,
}

/// The node's state.
pub struct Core {
    config: SessionConfig,
    locator: PeerLocator,
    next_obj: u64,
    next_conn: u64,
    objects: HashMap<ObjId, Slot>,
    sessions: BTreeMap<ConnId, SessionSlot>,
    peers: HashMap<PeerLocator, ConnId>,
    swiss: HashMap<[u8; 32], (Vec<u8>, LocalRef)>,
    gifts: HashMap<([u8; 32], Vec<u8>), Ref>,
    awaiting_gifts: HashMap<([u8; 32], Vec<u8>), Vec<ObjId>>,
    queue: VecDeque<Work>,
    actions: Vec<Action>,
    /// Every session's dropped imports.
    drops: DropSink,
    /// Sessions touched since the last flush (only they can have output or have ended).
    dirty: BTreeSet<ConnId>,
    /// Swiss numbers minted for objects on a peer's request (`gobs:sturdyref`), by object,
    /// so asking twice gives the same sturdyref.
    minted: HashMap<ObjId, Vec<u8>>,
    /// Told of every swiss number minted, so a host can make it durable.
    on_mint: Option<MintHook>,
    /// Objects the host keeps however many peers hold them ([`Core::pin`]).
    pinned: HashSet<ObjId>,
    /// How many swiss numbers name each object: those are kept too, until the last of
    /// their swiss numbers is revoked.
    bound: HashMap<ObjId, usize>,
    /// Swiss numbers revoked lately (their SHA-256), so a fetch of one says so.
    revoked: revoke::RevokedSwiss,
    /// Told of every swiss number revoked, so a host can forget it durably.
    on_revoke: Option<RevokeHook>,
    /// How many settled promises hold each local object (their values refer to it).
    held: HashMap<ObjId, usize>,
    /// Objects every peer let go of while a promise still held them: collected when the
    /// last such promise goes.
    released_while_held: HashSet<ObjId>,
    /// Hosts' own per-node state, one value per type ([`Core::ext`]).
    exts: HashMap<std::any::TypeId, Box<dyn std::any::Any + Send>>,
    /// When peers must have said hello by ([`Core::connected`]).
    hello_deadlines: timers::HelloDeadlines,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("locator", &self.locator)
            .field("objects", &self.objects.len())
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

fn err_term(msg: impl Into<String>) -> Term {
    Term::Data(Value::String(msg.into()))
}

fn outcome_of(outcome: &Result<Term, Term>) -> &Term {
    match outcome {
        Ok(t) | Err(t) => t,
    }
}

/// The key of a swiss number in the node's tables: its SHA-256.
pub(crate) fn swiss_key(swiss: &[u8]) -> [u8; 32] {
    Sha256::digest(swiss).into()
}

impl Core {
    /// A node known to peers as `locator`.
    pub fn new(locator: PeerLocator, config: SessionConfig) -> Core {
        Core {
            config,
            locator,
            next_obj: 1,
            next_conn: 1,
            objects: HashMap::new(),
            sessions: BTreeMap::new(),
            peers: HashMap::new(),
            swiss: HashMap::new(),
            gifts: HashMap::new(),
            awaiting_gifts: HashMap::new(),
            queue: VecDeque::new(),
            actions: Vec::new(),
            drops: DropSink::new(),
            dirty: BTreeSet::new(),
            exts: HashMap::new(),
            pinned: HashSet::new(),
            bound: HashMap::new(),
            revoked: revoke::RevokedSwiss::default(),
            on_revoke: None,
            held: HashMap::new(),
            released_while_held: HashSet::new(),
            minted: HashMap::new(),
            on_mint: None,
            hello_deadlines: timers::HelloDeadlines::default(),
        }
    }

    /// Calls `hook` with every swiss number this node mints for a peer (see
    /// [`Core::mint_sturdyref`]), and the object it names, so the host can keep the
    /// binding across restarts.
    pub fn on_mint(&mut self, hook: MintHook) {
        self.on_mint = Some(hook);
    }

    /// Whether connection `conn` still has a session (open or opening).
    pub fn has_session(&self, conn: ConnId) -> bool {
        self.sessions.contains_key(&conn)
    }

    /// Asks the exporter of `r` for a sturdyref to it: a gobs extension of the bootstrap
    /// object (`gobs:sturdyref <ref>`), answered with the URI as a string. A peer that is
    /// not a gobs node breaks the promise (its bootstrap has no such method).
    ///
    /// A sturdyref is the durable form of the authority the reference already gives, so
    /// any holder may ask for one; the exporter mints one swiss number per object.
    pub fn mint_sturdyref(&mut self, r: &RemoteRef) -> LocalRef {
        self.ask_exporter("gobs:sturdyref", r)
    }

    /// Asks the exporter of `r` which gobs actor it stands for: a gobs extension of the
    /// bootstrap object (`gobs:actor-type <ref>`), answered with the actor's registry name
    /// as a string. The promise breaks for an object that is not a gobs actor, and for a
    /// peer that is not a gobs node (its bootstrap has no such method; nothing happens
    /// there).
    pub fn ask_actor_type(&mut self, r: &RemoteRef) -> LocalRef {
        self.ask_exporter("gobs:actor-type", r)
    }

    /// Sends `method <r>` to the bootstrap object of `r`'s exporter.
    fn ask_exporter(&mut self, method: &str, r: &RemoteRef) -> LocalRef {
        let p = self.new_promise();
        self.send_remote(
            r.conn(),
            OutTarget::Export(0),
            vec![Term::sym(method), Term::Ref(Ref::Remote(r.clone()))],
            Some(p.id),
        );
        p
    }

    /// Exporter side of [`Core::mint_sturdyref`]: the swiss number of `obj` (made, bound
    /// and told to the [`Core::on_mint`] hook on first use).
    pub(crate) fn swiss_of(&mut self, obj: LocalRef) -> Result<Vec<u8>, CaptpError> {
        if let Some(s) = self.minted.get(&obj.id) {
            return Ok(s.clone());
        }
        let mut swiss = vec![0u8; 32];
        getrandom::fill(&mut swiss).map_err(|e| CaptpError::Random(e.to_string()))?;
        self.bind_swiss(&swiss, obj);
        self.minted.insert(obj.id, swiss.clone());
        if let Some(mut hook) = self.on_mint.take() {
            hook(self, &swiss, obj);
            self.on_mint = Some(hook);
        }
        Ok(swiss)
    }

    /// The host's own state of type `T` on this node, made with `Default` on first use
    /// (the vat bridge keeps its table of exported actors here).
    pub fn ext<T: Default + Send + 'static>(&mut self) -> &mut T {
        let slot = self
            .exts
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        match slot.downcast_mut::<T>() {
            Some(t) => t,
            // Keyed by the TypeId of T: the value is a T.
            None => unreachable!("an extension slot holds another type"),
        }
    }

    /// What `r` stands for now: the local object a fulfilled promise (or a chain of them)
    /// resolved to, else `r` itself.
    pub fn settled_target(&self, mut r: LocalRef) -> LocalRef {
        for _ in 0..64 {
            match self.objects.get(&r.id) {
                Some(Slot::Promise(PromiseSlot {
                    settled: Some(Ok(Term::Ref(Ref::Local(q)))),
                    ..
                })) if *q != r => r = *q,
                _ => break,
            }
        }
        r
    }

    /// The hosted object `r` as `Any` (see [`LocalObject::as_any`]); `None` for promises,
    /// other kinds of slot, an object busy handling a message, or one that is gone.
    pub fn object_any(&self, r: LocalRef) -> Option<&dyn std::any::Any> {
        match self.objects.get(&r.id) {
            Some(Slot::Object(obj)) => obj.as_any(),
            _ => None,
        }
    }

    /// This node's locator.
    pub fn locator(&self) -> &PeerLocator {
        &self.locator
    }

    /// Takes the actions queued so far.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Hosts an object. Once it has been exported, it lives as long as a peer (or a
    /// settled promise of this node) holds it: when every peer that imported it has let
    /// go (`op:gc-export`, or its session ended), the node drops it. Objects bound to a
    /// swiss number stay (the swiss table holds them, until [`Core::revoke_swiss`]), as do
    /// objects [`Core::pin`]ned — pin one whose reference the host keeps to use later.
    pub fn spawn(&mut self, obj: Box<dyn LocalObject>) -> LocalRef {
        let id = self.alloc();
        self.objects.insert(id, Slot::Object(obj));
        LocalRef { id, promise: false }
    }

    /// Makes `obj` reachable by `fetch` with this swiss number (and keeps it while a swiss
    /// number names it: see [`Core::spawn`], [`Core::revoke_swiss`]). Binding a swiss
    /// number again moves it to the new object; the old one is then kept no longer for
    /// its sake.
    pub fn bind_swiss(&mut self, swiss: &[u8], obj: LocalRef) {
        let key = swiss_key(swiss);
        self.revoked.forget(&key);
        let old = self.swiss.insert(key, (swiss.to_vec(), obj));
        match old {
            Some((_, old)) if old.id == obj.id => {}
            old => {
                *self.bound.entry(obj.id).or_default() += 1;
                if let Some((_, old)) = old {
                    self.unbind(old.id);
                }
            }
        }
    }

    /// Keeps `obj` even when no peer holds it (see [`Core::spawn`]).
    pub fn pin(&mut self, obj: LocalRef) {
        self.pinned.insert(obj.id);
    }

    /// Undoes [`Core::pin`]: the object goes once no peer, no promise and no swiss number
    /// holds it (at once, if none does now).
    pub fn unpin(&mut self, obj: LocalRef) {
        if self.pinned.remove(&obj.id) && !self.bound.contains_key(&obj.id) {
            self.queue.push_back(Work::Released {
                obj: obj.id,
                answer: false,
            });
        }
    }

    /// Looks a swiss number up, comparing it in constant time. (The table is keyed by the
    /// SHA-256 of the swiss number, so the lookup's timing says nothing about the secret.)
    pub fn lookup_swiss(&self, swiss: &[u8]) -> Option<LocalRef> {
        let (stored, obj) = self.swiss.get(&swiss_key(swiss))?;
        bool::from(stored.as_slice().ct_eq(swiss)).then_some(*obj)
    }

    /// A session to act on; marks it for the next flush.
    fn sess(&mut self, conn: ConnId) -> Option<&mut SessionSlot> {
        self.dirty.insert(conn);
        self.sessions.get_mut(&conn)
    }

    fn alloc(&mut self) -> ObjId {
        let id = ObjId(self.next_obj);
        self.next_obj += 1;
        id
    }

    /// A new pending local promise.
    pub fn new_promise(&mut self) -> LocalRef {
        let id = self.alloc();
        self.objects
            .insert(id, Slot::Promise(PromiseSlot::default()));
        LocalRef { id, promise: true }
    }

    pub(crate) fn new_resolver(
        &mut self,
        promise: ObjId,
        question: Option<(ConnId, u64)>,
    ) -> LocalRef {
        let id = self.alloc();
        self.objects.insert(
            id,
            Slot::Resolver {
                promise,
                question,
                used: false,
            },
        );
        LocalRef { id, promise: false }
    }

    /// How many objects and promises the node holds (for leak checks and monitoring).
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// The state of a local promise: `None` while pending.
    pub fn promise_state(&self, p: ObjId) -> Option<Result<Term, Term>> {
        match self.objects.get(&p) {
            Some(Slot::Promise(ps)) => ps.settled.clone(),
            _ => None,
        }
    }

    /// Calls `f` with the promise's outcome when it settles (at once if it has).
    pub fn when_settled(&mut self, p: LocalRef, f: Callback) {
        if p.promise {
            self.listen(p.id, Listener::Callback(f));
        } else {
            f(Ok(Term::local(p)));
        }
    }

    /// Like [`Core::when_settled`], with the core at hand in the callback (to send, export
    /// or settle more).
    pub fn when_settled_with_core(&mut self, p: LocalRef, f: CoreCallback) {
        if p.promise {
            self.listen(p.id, Listener::CoreCallback(f));
        } else {
            f(self, Ok(Term::local(p)));
        }
    }

    /// Sends `args` to `to` from outside any object; returns a promise for the answer.
    /// The message is queued and goes out at the next [`Core::run`] (which
    /// the tokio shell's `Node::with_core` and `Node::post` call after their closure), so
    /// many sends in one closure leave in one write.
    pub fn send(&mut self, to: Ref, args: Vec<Term>) -> LocalRef {
        let p = self.new_promise();
        self.enqueue_deliver(to, args, Some(p.id));
        p
    }

    pub(crate) fn enqueue_deliver(&mut self, to: Ref, args: Vec<Term>, result: Option<ObjId>) {
        let held = objects_in(&args);
        for &obj in &held {
            self.hold(obj);
        }
        self.queue.push_back(Work::Deliver {
            to,
            args,
            result,
            held,
        });
    }

    /// Forgets a promise the host no longer needs, dropping its value (and so the
    /// references in it, which lets the session release imports to their exporters): at
    /// once if it is settled, else as soon as it settles (after telling its listeners and
    /// delivering what was queued on it). Objects are left alone. Later uses of the
    /// reference break.
    pub fn release(&mut self, p: LocalRef) {
        match self.objects.get_mut(&p.id) {
            Some(Slot::Promise(ps)) if ps.settled.is_some() => self.remove_slot(p.id),
            Some(Slot::Promise(ps)) => ps.ephemeral = true,
            _ => {}
        }
    }

    /// For each session: its connection, the peer (once known), how many objects it
    /// exports and how many it imports.
    pub fn session_stats(&self) -> Vec<(ConnId, Option<PeerLocator>, usize, usize)> {
        self.sessions
            .iter()
            .map(|(c, s)| {
                (
                    *c,
                    s.session.remote_location().map(|(l, _)| l.clone()),
                    s.session.export_count(),
                    s.session.import_count(),
                )
            })
            .collect()
    }

    /// Whether peers get gobs actors' failures in full ([`SessionConfig::peer_error_detail`]).
    pub fn peer_error_detail(&self) -> bool {
        self.config.peer_error_detail
    }

    /// What the open session with `peer` holds for it and from it, if there is one: how
    /// many objects it exports, imports, and answers it keeps for the peer's questions.
    pub fn tables_with(&self, peer: &PeerLocator) -> Option<(usize, usize, usize)> {
        let s = &self.sessions.get(self.peers.get(peer)?)?.session;
        Some((s.export_count(), s.import_count(), s.answer_count()))
    }

    /// Aborts the session with `peer`, if there is one; its promises break.
    pub fn abort_peer(&mut self, peer: &PeerLocator, reason: &str) -> bool {
        let Some(conn) = self.peers.get(peer).copied() else {
            return false;
        };
        if let Some(s) = self.sess(conn) {
            s.session.abort(reason);
        }
        self.flush();
        true
    }

    // ---- connections -------------------------------------------------------------------

    /// A new connection accepted from a peer; returns its id.
    pub fn accepted(&mut self) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.open_session(conn, None);
        self.flush();
        conn
    }

    fn open_session(&mut self, conn: ConnId, dialed: Option<PeerLocator>) {
        let keys = match KeyPair::generate() {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "no randomness for a session key; closing the connection");
                self.actions.push(Action::Close(conn));
                return;
            }
        };
        let id = self.alloc();
        self.objects.insert(id, Slot::Bootstrap(conn));
        let bootstrap = LocalRef { id, promise: false };
        let session = Session::new(conn, self.config.clone(), keys, &self.locator, bootstrap)
            .with_drop_sink(self.drops.clone());
        self.dirty.insert(conn);
        self.sessions.insert(
            conn,
            SessionSlot {
                session,
                dialed,
                on_open: Vec::new(),
            },
        );
    }

    /// Aborts `conn` if its peer has not sent `op:start-session` yet, at once
    /// ([`Core::handle_timeout`] calls it at the deadline [`Core::connected`] set, so a
    /// silent peer cannot hold a session open).
    pub fn hello_deadline(&mut self, conn: ConnId) {
        if let Some(s) = self.sess(conn)
            && !s.session.is_open()
            && !s.session.is_aborted()
        {
            s.session.abort("no op:start-session in time");
            self.flush();
        }
    }

    /// The shell could not connect the dial `conn`.
    pub fn dial_failed(&mut self, conn: ConnId, error: &str) {
        let who = self
            .sessions
            .get(&conn)
            .and_then(|s| s.dialed.as_ref())
            .map(|l| l.to_uri())
            .unwrap_or_default();
        self.connection_lost(conn, &format!("cannot reach {who}: {error}"));
    }

    /// Bytes arrived on `conn`.
    pub fn bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        match self.sess(conn) {
            Some(s) => s.session.receive(bytes),
            None => return,
        }
        self.pump(conn);
        self.run();
    }

    /// The connection ended (EOF or an error).
    pub fn closed(&mut self, conn: ConnId, why: &str) {
        let who = self
            .sessions
            .get(&conn)
            .and_then(|s| {
                s.session
                    .remote_location()
                    .map(|(l, _)| l.clone())
                    .or_else(|| s.dialed.clone())
            })
            .map(|l| l.to_uri())
            .unwrap_or_else(|| format!("connection {}", conn.0));
        self.connection_lost(conn, &format!("connection to {who} lost: {why}"));
    }

    fn connection_lost(&mut self, conn: ConnId, why: &str) {
        if let Some(slot) = self.sessions.remove(&conn) {
            // The peer lets go of everything it imported and every answer it held.
            let (exports, answers) = slot.session.held_by_peer();
            for obj in exports {
                self.queue.push_back(Work::Released { obj, answer: false });
            }
            for obj in answers {
                self.queue.push_back(Work::Released { obj, answer: true });
            }
            for op in slot.on_open {
                let p = match op {
                    OnOpen::Fetch { promise, .. } | OnOpen::Withdraw { promise, .. } => promise,
                };
                self.settle(p, Err(err_term(why)));
            }
        }
        self.peers.retain(|_, c| *c != conn);
        self.objects
            .retain(|_, s| !matches!(s, Slot::Bootstrap(c) if *c == conn));
        // Promises answered over this connection can never settle now.
        let broken: Vec<ObjId> = self
            .objects
            .iter()
            .filter_map(|(id, s)| match s {
                Slot::Promise(p)
                    if p.settled.is_none()
                        && (p.forward.is_some_and(|(c, _)| c == conn)
                            || p.depends_on == Some(conn)) =>
                {
                    Some(*id)
                }
                _ => None,
            })
            .collect();
        for p in broken {
            self.settle(p, Err(err_term(why)));
        }
        self.run();
    }

    fn session_to(&mut self, peer: &PeerLocator) -> ConnId {
        if let Some(c) = self.peers.get(peer)
            && self.sessions.contains_key(c)
        {
            return *c;
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.open_session(conn, Some(peer.clone()));
        self.peers.insert(peer.clone(), conn);
        self.actions.push(Action::Dial(conn, peer.clone()));
        conn
    }

    fn when_open(&mut self, conn: ConnId, op: OnOpen) {
        let open = self
            .sessions
            .get(&conn)
            .is_some_and(|s| s.session.is_open());
        if open {
            self.run_on_open(conn, op);
        } else if let Some(s) = self.sess(conn) {
            s.on_open.push(op);
        }
    }

    fn pump(&mut self, conn: ConnId) {
        loop {
            let Some(slot) = self.sess(conn) else {
                return;
            };
            let Some(event) = slot.session.poll_event() else {
                break;
            };
            self.handle_event(conn, event);
        }
        self.flush();
    }

    fn flush(&mut self) {
        let mut dropped: BTreeMap<ConnId, Vec<u64>> = BTreeMap::new();
        for (conn, pos) in self.drops.drain() {
            dropped.entry(conn).or_default().push(pos);
        }
        for (conn, positions) in dropped {
            if let Some(slot) = self.sess(conn) {
                slot.session.release_dropped(&positions);
            }
        }
        let mut closing = Vec::new();
        for conn in std::mem::take(&mut self.dirty) {
            let Some(slot) = self.sessions.get_mut(&conn) else {
                continue;
            };
            let out = slot.session.take_output();
            if !out.is_empty() {
                self.actions.push(Action::Write(conn, out));
            }
            if slot.session.is_aborted() {
                closing.push(conn);
            }
        }
        for conn in closing {
            self.actions.push(Action::Close(conn));
            let why = match self.sessions.get(&conn) {
                Some(s) => s
                    .session
                    .remote_location()
                    .map(|(l, _)| format!("session with {} aborted", l.to_uri()))
                    .unwrap_or_else(|| "session aborted".into()),
                None => continue,
            };
            self.connection_lost(conn, &why);
        }
    }

    fn handle_event(&mut self, conn: ConnId, event: Event) {
        match event {
            Event::Opened { location, .. } => self.opened(conn, *location),
            Event::Deliver {
                target,
                args,
                answer_pos,
                resolve_me,
            } => {
                let result = if answer_pos.is_some() || resolve_me.is_some() {
                    let p = self.new_promise();
                    if answer_pos.is_none()
                        && let Some(Slot::Promise(ps)) = self.objects.get_mut(&p.id)
                    {
                        ps.ephemeral = true;
                    }
                    if let Some(pos) = answer_pos
                        && let Some(s) = self.sess(conn)
                    {
                        s.session.bind_answer(pos, p);
                    }
                    if let Some(r) = resolve_me {
                        self.listen(
                            p.id,
                            Listener::Notify {
                                to: Ref::Remote(r),
                                partial: false,
                            },
                        );
                    }
                    Some(p.id)
                } else {
                    None
                };
                let args = args
                    .into_iter()
                    .map(|a| self.redeem_handoffs(conn, a))
                    .collect();
                self.enqueue_deliver(Ref::Local(target), args, result);
            }
            Event::Listen {
                target,
                resolver,
                wants_partial,
            } => {
                if target.promise {
                    self.listen(
                        target.id,
                        Listener::Notify {
                            to: Ref::Remote(resolver),
                            partial: wants_partial,
                        },
                    );
                } else {
                    self.enqueue_deliver(
                        Ref::Remote(resolver),
                        vec![Term::sym("fulfill"), Term::local(target)],
                        None,
                    );
                }
            }
            Event::Select {
                target,
                selector,
                answer_pos,
            } => {
                let q = self.new_promise();
                if let Some(s) = self.sess(conn) {
                    s.session.bind_answer(answer_pos, q);
                }
                if target.promise {
                    self.listen(target.id, Listener::Select(selector, q.id));
                } else {
                    self.settle(
                        q.id,
                        Err(err_term(format!(
                            "{selector:?}: an object is not a struct, list or tagged value"
                        ))),
                    );
                }
            }
            Event::ExportReleased(obj) => self.queue.push_back(Work::Released {
                obj: obj.id,
                answer: false,
            }),
            Event::AnswerReleased(obj) => self.queue.push_back(Work::Released {
                obj: obj.id,
                answer: true,
            }),
            Event::Aborted { reason, by_peer } => {
                tracing::info!(conn = conn.0, reason, by_peer, "CapTP session ended");
            }
        }
    }

    fn opened(&mut self, conn: ConnId, location: PeerLocator) {
        let existing = self.peers.get(&location).copied().filter(|c| *c != conn);
        if let Some(other) = existing
            && let Some(theirs) = self.sessions.get(&other)
            && theirs.dialed.is_some()
            && self.sessions.get(&conn).is_some_and(|s| s.dialed.is_none())
        {
            // Crossed hellos: we dialed them while they dialed us. The connection whose
            // initiator has the lower Public Identifier is aborted.
            let our_outbound = theirs.session.our_side_id();
            let their_outbound = self
                .sessions
                .get(&conn)
                .and_then(|s| s.session.remote_key())
                .map(|k| k.side_id());
            if let Some(their_outbound) = their_outbound {
                if our_outbound < their_outbound {
                    let pending = self
                        .sessions
                        .get_mut(&other)
                        .map(|s| std::mem::take(&mut s.on_open))
                        .unwrap_or_default();
                    if let Some(s) = self.sess(other) {
                        s.session.abort("crossed hellos: this connection loses");
                    }
                    self.peers.insert(location, conn);
                    for op in pending {
                        self.run_on_open(conn, op);
                    }
                } else if let Some(s) = self.sess(conn) {
                    s.session.abort("crossed hellos: this connection loses");
                }
                return;
            }
        }
        // One session per peer pair: another open session with this peer.
        if let Some(other) = existing
            && self
                .sessions
                .get(&other)
                .is_some_and(|s| s.session.is_open() && !s.session.is_aborted())
        {
            match self.config.duplicate_session {
                DuplicateSession::RefuseNew => {
                    tracing::info!(peer = %location.to_uri(), "refusing a second session from a peer");
                    if let Some(s) = self.sess(conn) {
                        s.session.abort(
                            "a session with this peer is already open (one session per peer pair)",
                        );
                    }
                    return;
                }
                DuplicateSession::ReplaceOld => {
                    if let Some(s) = self.sess(other) {
                        s.session
                            .abort("replaced by a newer session from the same peer");
                    }
                }
            }
        }
        self.peers.insert(location, conn);
        let pending = self
            .sessions
            .get_mut(&conn)
            .map(|s| std::mem::take(&mut s.on_open))
            .unwrap_or_default();
        for op in pending {
            self.run_on_open(conn, op);
        }
    }

    fn run_on_open(&mut self, conn: ConnId, op: OnOpen) {
        match op {
            OnOpen::Fetch { swiss, promise } => {
                // A swiss number is a byte string on the wire (Goblins refuses a string).
                self.send_remote(
                    conn,
                    OutTarget::Export(0),
                    vec![Term::sym("fetch"), Term::Data(Value::Bytes(swiss))],
                    Some(promise),
                );
            }
            OnOpen::Withdraw {
                signed_give,
                gifter,
                promise,
            } => match self.handoff_receive(conn, gifter, signed_give) {
                Ok(receive) => self.send_remote(
                    conn,
                    OutTarget::Export(0),
                    vec![Term::sym("withdraw-gift"), Term::Data(receive)],
                    Some(promise),
                ),
                Err(e) => self.settle(promise, Err(err_term(e.to_string()))),
            },
        }
    }

    // ---- promises ------------------------------------------------------------------------

    fn listen(&mut self, p: ObjId, l: Listener) {
        match self.objects.get_mut(&p) {
            Some(Slot::Promise(ps)) => match &ps.settled {
                None => ps.listeners.push(l),
                Some(outcome) => {
                    let outcome = outcome.clone();
                    self.notify(l, outcome);
                }
            },
            _ => self.notify(
                l,
                Err(err_term("listened to something that is not a promise")),
            ),
        }
    }

    fn notify(&mut self, l: Listener, outcome: Result<Term, Term>) {
        match l {
            Listener::Chain(q) => self.settle(q, outcome),
            Listener::Callback(f) => f(outcome),
            Listener::CoreCallback(f) => f(self, outcome),
            Listener::Select(selector, q) => {
                let part = match outcome {
                    Ok(v) => selector.select(&v).cloned().map_err(err_term),
                    Err(e) => Err(e),
                };
                self.settle(q, part);
            }
            Listener::Notify { to: r, .. } => {
                let args = match outcome {
                    Ok(v) => vec![Term::sym("fulfill"), v],
                    Err(e) => vec![Term::sym("break"), e],
                };
                self.enqueue_deliver(r, args, None);
            }
        }
    }

    /// Settles a local promise made with [`Core::new_promise`] or a [`Cx`] (once; later
    /// settlements are ignored).
    pub fn settle_promise(&mut self, p: LocalRef, outcome: Result<Term, Term>) {
        self.settle(p.id, outcome);
        self.run();
    }

    /// Settles a promise (once; later settlements are ignored).
    pub(crate) fn settle(&mut self, p: ObjId, outcome: Result<Term, Term>) {
        // Resolving to another local promise chains to it.
        if let Ok(Term::Ref(Ref::Local(q))) = &outcome
            && q.promise
            && q.id != p
        {
            let q = q.id;
            let queued = match self.objects.get_mut(&p) {
                Some(Slot::Promise(ps)) if ps.settled.is_none() => std::mem::take(&mut ps.queued),
                _ => return,
            };
            for m in queued {
                let held = m.held_objects();
                self.enqueue_deliver(
                    Ref::Local(LocalRef {
                        id: q,
                        promise: true,
                    }),
                    m.args,
                    m.result,
                );
                self.unhold_all(held);
            }
            if let Some(Slot::Promise(ps)) = self.objects.get_mut(&p) {
                // Stays pending; q's settlement settles it.
                ps.forward = None;
            }
            self.tell_partial(p, &outcome);
            self.listen(q, Listener::Chain(p));
            return;
        }
        // Resolving to a promise on a peer: listen to it there, settle when it settles.
        if let Ok(Term::Ref(Ref::Remote(r))) = &outcome
            && r.is_promise()
            && matches!(self.objects.get(&p), Some(Slot::Promise(ps)) if ps.settled.is_none())
        {
            let r = r.clone();
            self.tell_partial(p, &outcome);
            let resolver = self.new_resolver(p, None);
            let sent = match self.sess(r.conn()) {
                Some(s) => s.session.send_listen(OutTarget::of(&r), resolver, false),
                None => Err(CaptpError::Aborted),
            };
            match sent {
                Ok(()) => {
                    if let Some(Slot::Promise(ps)) = self.objects.get_mut(&p) {
                        ps.depends_on = Some(r.conn());
                    }
                }
                Err(e) => self.settle(
                    p,
                    Err(err_term(format!("cannot listen to a remote promise: {e}"))),
                ),
            }
            return;
        }
        let (listeners, queued, ephemeral) = match self.objects.get_mut(&p) {
            Some(Slot::Promise(ps)) if ps.settled.is_none() => {
                ps.settled = Some(outcome.clone());
                let held = &mut self.held;
                outcome_of(&outcome).for_each_ref(&mut |r| {
                    if let Ref::Local(l) = r
                        && !l.promise
                    {
                        *held.entry(l.id).or_default() += 1;
                    }
                });
                (
                    std::mem::take(&mut ps.listeners),
                    std::mem::take(&mut ps.queued),
                    ps.ephemeral,
                )
            }
            _ => return,
        };
        if ephemeral {
            self.remove_slot(p);
        }
        for l in listeners {
            self.notify(l, outcome.clone());
        }
        for m in queued {
            let held = m.held_objects();
            self.deliver_to_outcome(&outcome, m.args, m.result);
            self.unhold_all(held);
        }
    }

    /// Lets go of a queued message's objects, once it has been passed on (its delivery,
    /// if any, holds them itself).
    fn unhold_all(&mut self, objs: Vec<ObjId>) {
        for obj in objs {
            self.unhold(obj);
        }
    }

    /// `p` was resolved to another promise (`outcome`): listeners that want partial
    /// resolutions are told now, and that concludes their listen.
    fn tell_partial(&mut self, p: ObjId, outcome: &Result<Term, Term>) {
        let partial = match self.objects.get_mut(&p) {
            Some(Slot::Promise(ps)) => {
                let (partial, rest): (Vec<Listener>, Vec<Listener>) =
                    std::mem::take(&mut ps.listeners)
                        .into_iter()
                        .partition(|l| matches!(l, Listener::Notify { partial: true, .. }));
                ps.listeners = rest;
                partial
            }
            _ => return,
        };
        for l in partial {
            self.notify(l, outcome.clone());
        }
    }

    fn deliver_to_outcome(
        &mut self,
        outcome: &Result<Term, Term>,
        args: Vec<Term>,
        result: Option<ObjId>,
    ) {
        match outcome {
            Ok(Term::Ref(r)) => self.enqueue_deliver(r.clone(), args, result),
            Ok(other) => {
                if let Some(res) = result {
                    self.settle(
                        res,
                        Err(err_term(format!(
                            "cannot send a message to a non-object: {other:?}"
                        ))),
                    );
                }
            }
            Err(e) => {
                if let Some(res) = result {
                    self.settle(res, Err(e.clone()));
                }
            }
        }
    }

    // ---- running messages --------------------------------------------------------------

    /// Runs queued deliveries until none are left, then flushes every session.
    pub fn run(&mut self) {
        while let Some(work) = self.queue.pop_front() {
            match work {
                Work::Deliver {
                    to,
                    args,
                    result,
                    held,
                } => {
                    self.deliver(to, args, result);
                    // Delivered: exported, kept by the object, or held by its answer.
                    for obj in held {
                        self.unhold(obj);
                    }
                }
                Work::Released { obj, answer } => self.released(obj, answer),
                Work::Unhold(obj) => self.unhold(obj),
            }
        }
        self.flush();
    }

    /// The peer no longer holds `obj` (an export, or with `answer` an answer promise):
    /// forgets it if nothing else can reach it.
    fn released(&mut self, obj: ObjId, answer: bool) {
        // A delivery that ran since may have exported it again.
        if self.sessions.values().any(|s| s.session.exports(obj)) {
            return;
        }
        match self.objects.get(&obj) {
            Some(Slot::Promise(p)) if p.settled.is_some() && (answer || p.listeners.is_empty()) => {
                self.remove_slot(obj)
            }
            Some(Slot::Resolver { used, .. }) if !answer && *used => self.remove_slot(obj),
            Some(Slot::Object(_)) if !answer => self.collect(obj),
            _ => {}
        }
    }

    /// Drops an exported object no peer holds any more, unless it is pinned or a settled
    /// promise still refers to it (then it goes with the last such promise).
    fn collect(&mut self, obj: ObjId) {
        if self.pinned.contains(&obj)
            || self.bound.contains_key(&obj)
            || self.sessions.values().any(|s| s.session.exports(obj))
        {
            return;
        }
        if self.held.contains_key(&obj) {
            self.released_while_held.insert(obj);
            return;
        }
        if let Some(Slot::Object(mut o)) = self.objects.remove(&obj) {
            o.collected(self);
        }
    }

    /// Removes a slot; a settled promise lets go of the objects its value held.
    fn remove_slot(&mut self, id: ObjId) {
        let Some(Slot::Promise(PromiseSlot {
            settled: Some(outcome),
            ..
        })) = self.objects.remove(&id)
        else {
            return;
        };
        let mut objs = Vec::new();
        outcome_of(&outcome).for_each_ref(&mut |r| {
            if let Ref::Local(l) = r
                && !l.promise
            {
                objs.push(l.id);
            }
        });
        for obj in objs {
            self.unhold(obj);
        }
    }

    /// Something on the node (a promise's value, a deposited gift) refers to `obj`.
    pub(crate) fn hold(&mut self, obj: ObjId) {
        *self.held.entry(obj).or_default() += 1;
    }

    /// Undoes one [`Core::hold`]; the last one lets a released object go.
    pub(crate) fn unhold(&mut self, obj: ObjId) {
        let Some(n) = self.held.get_mut(&obj) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.held.remove(&obj);
            if self.released_while_held.remove(&obj) {
                self.collect(obj);
            }
        }
    }

    fn deliver(&mut self, to: Ref, args: Vec<Term>, result: Option<ObjId>) {
        match to {
            Ref::Remote(r) => self.send_remote(r.conn(), OutTarget::of(&r), args, result),
            Ref::Local(target) => self.deliver_local(target, args, result),
        }
    }

    fn send_remote(&mut self, conn: ConnId, to: OutTarget, args: Vec<Term>, result: Option<ObjId>) {
        self.dirty.insert(conn);
        let Some(mut slot) = self.sessions.remove(&conn) else {
            if let Some(p) = result {
                self.settle(
                    p,
                    Err(err_term(format!(
                        "the session of connection {} is gone",
                        conn.0
                    ))),
                );
            }
            return;
        };
        let outcome = {
            let sessions = &mut self.sessions;
            let receiver_key = slot.session.remote_key();
            let dirty = &mut self.dirty;
            let mut tp = |r: &RemoteRef| {
                dirty.insert(r.conn());
                gift_for(sessions, receiver_key, r)
            };
            match result {
                Some(p) => {
                    let resolver = self.next_obj;
                    self.next_obj += 1;
                    let resolver = LocalRef {
                        id: ObjId(resolver),
                        promise: false,
                    };
                    slot.session
                        .send_deliver(to, &args, true, Some(resolver), &mut tp)
                        .map(|answer| (Some((p, resolver, answer)), ()))
                }
                None => slot
                    .session
                    .send_deliver_only(to, &args, &mut tp)
                    .map(|()| (None, ())),
            }
        };
        let remote = slot.session.remote_location().map(|(l, _)| l.to_uri());
        self.sessions.insert(conn, slot);
        match outcome {
            Ok((Some((p, resolver, answer)), ())) => {
                let question = answer.map(|a| (conn, a));
                self.objects.insert(
                    resolver.id,
                    Slot::Resolver {
                        promise: p,
                        question,
                        used: false,
                    },
                );
                if let Some(Slot::Promise(ps)) = self.objects.get_mut(&p) {
                    ps.forward = question;
                }
            }
            Ok((None, ())) => {}
            Err(e) => {
                let who = remote.unwrap_or_else(|| format!("connection {}", conn.0));
                if let Some(p) = result {
                    self.settle(p, Err(err_term(format!("cannot send to {who}: {e}"))));
                }
            }
        }
    }

    fn deliver_local(&mut self, target: LocalRef, args: Vec<Term>, result: Option<ObjId>) {
        let slot = match self.objects.get_mut(&target.id) {
            Some(s) => s,
            None => {
                if let Some(p) = result {
                    self.settle(p, Err(err_term("no such object (it was released)")));
                }
                return;
            }
        };
        match slot {
            Slot::Object(_) => {
                let Some(Slot::Object(mut obj)) = self.objects.insert(target.id, Slot::Busy) else {
                    return;
                };
                let outcome = {
                    let mut cx = Cx {
                        core: self,
                        me: target,
                    };
                    obj.deliver(&mut cx, args)
                };
                self.objects.insert(target.id, Slot::Object(obj));
                if let Some(p) = result {
                    self.settle(p, outcome);
                }
            }
            Slot::Busy => {
                if let Some(p) = result {
                    self.settle(p, Err(err_term("object called itself synchronously")));
                }
            }
            Slot::Promise(ps) => match &ps.settled {
                Some(outcome) => {
                    let outcome = outcome.clone();
                    self.deliver_to_outcome(&outcome, args, result);
                }
                None => match ps.forward {
                    Some((conn, answer)) => {
                        self.send_remote(conn, OutTarget::Answer(answer), args, result)
                    }
                    None => {
                        ps.queued.push(Queued::hold(&mut self.held, args, result));
                    }
                },
            },
            Slot::Resolver {
                promise,
                question,
                used,
            } => {
                let (promise, question, was_used) = (*promise, *question, *used);
                *used = true;
                if was_used {
                    return;
                }
                let mut it = args.into_iter();
                let outcome = match (it.next().as_ref().and_then(Term::as_symbol), it.next()) {
                    (Some("fulfill"), Some(v)) => Ok(v),
                    (Some("break"), Some(e)) => Err(e),
                    (Some("fulfill"), None) => Ok(Term::Data(Value::Bool(false))),
                    _ => Err(err_term("a resolver takes 'fulfill or 'break and a value")),
                };
                if let Some((conn, answer)) = question
                    && let Some(s) = self.sess(conn)
                    && s.session.is_open()
                {
                    let _ = s.session.send_gc_answer(answer);
                }
                if let Some(Slot::Promise(ps)) = self.objects.get_mut(&promise) {
                    ps.forward = None;
                }
                self.settle(promise, outcome);
                if let Some(p) = result {
                    self.settle(p, Ok(Term::Data(Value::Bool(true))));
                }
                // Used once; if no peer holds it any more, nothing can reach it.
                if !self.sessions.values().any(|s| s.session.exports(target.id)) {
                    self.remove_slot(target.id);
                }
            }
            Slot::Bootstrap(conn) => {
                let conn = *conn;
                let outcome = self.bootstrap_call(conn, args);
                if let Some(p) = result {
                    self.settle(p, outcome);
                }
            }
        }
    }
}
