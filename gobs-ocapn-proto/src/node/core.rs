//! The node's logic without I/O, and its state: the tables below, and what their entries
//! are. The behaviour is split by concern, each an `impl Core` of its own:
//! [`objects`] hosts objects and binds swiss numbers, [`promises`] settles promises,
//! [`sessions`] runs the CapTP sessions and [`events`] answers what their peers ask,
//! [`delivery`] runs messages, [`gc`] lets go of what nothing holds. The bootstrap object
//! is in [`bootstrap`], sturdyrefs and handoffs in [`handoff`], taking swiss numbers back in
//! [`revoke`] and [`caretaker`], the hello deadlines (time, as an input) in [`timers`].
//!
//! [`Core`] is driven by its shell (`gobs_ocapn::node::Node` runs it on tokio): the shell
//! hands it connections, bytes and dial results, and carries out the [`Action`]s it queues
//! (write bytes, dial a peer, close a connection). Everything here is deterministic and
//! runs on one thread.
//!
//! The seam between the node and the objects it hosts is here too, at the end, because the
//! core holds its objects and an object is handed the core: [`LocalObject`] and the [`Cx`]
//! an object gets while it handles a message. CapTP knows nothing of vats; a vat bridge (or
//! the conformance fixtures) implements `LocalObject`, and everything an object may do to
//! the world (spawn, make promises, send to local or remote references, enliven
//! sturdyrefs) goes through `Cx`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use sha2::{Digest, Sha256};

mod bootstrap;
mod caretaker;
mod conn_set;
mod delivery;
mod events;
mod gc;
mod handoff;
mod objects;
mod promises;
mod proof;
mod reasons;
mod revoke;
mod sessions;
mod timers;
mod told;

pub use crate::captp::{HELLO_TIMEOUT, IDLE_TIMEOUT};
pub use caretaker::CARETAKER_REVOKED;
pub use proof::PeerProof;
pub use reasons::{
    ERROR_LABEL, OBJECT_RELEASED, SWISS_REVOKED, SWISS_UNKNOWN, error_record, is_kind, kinds,
};
pub use revoke::REVOKED_KEPT;

/// Told of every swiss number revoked (see [`Core::on_revoke`]).
pub type RevokeHook = Box<dyn FnMut(&[u8]) + Send>;

use crate::captp::{
    CapRef, ConnId, DropSink, LocalRef, ObjId, Selector, Session, SessionConfig, Term,
};
use crate::id_hash::{IdMap, IdSet};
use crate::locator::{PeerLocator, Sturdyref};
use crate::syrup::Value;

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

/// What a node object id stands for.
enum Slot {
    Object(Box<dyn LocalObject>),
    /// An object handling a message (it is out of the table meanwhile).
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
        to: CapRef,
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
    /// The session the message came in on (see [`Cx::caller`]).
    from: Option<ConnId>,
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
    /// Stands for a third-party gift being redeemed at its exporter (see
    /// [`Core::is_handoff`]).
    handoff: bool,
}

enum Work {
    Deliver {
        to: CapRef,
        args: Vec<Term>,
        result: Option<ObjId>,
        /// The session the message came in on; `None` for one sent on this node.
        from: Option<ConnId>,
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
#[derive(Clone)]
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

impl OnOpen {
    /// The promise its answer settles.
    fn promise(&self) -> ObjId {
        match self {
            OnOpen::Fetch { promise, .. } | OnOpen::Withdraw { promise, .. } => *promise,
        }
    }
}

/// What refused dials to one peer asked (see `Core::ask_again_elsewhere`).
#[derive(Default)]
struct Refused {
    ops: Vec<OnOpen>,
    /// How many refused dials carried them so far.
    tries: u8,
}

struct SessionSlot {
    session: Session,
    dialed: Option<PeerLocator>,
    /// What the netlayer proved of an accepted connection's peer (`None`: we dialed it).
    proof: Option<PeerProof>,
    /// Its peer's location is believed: we dialed it, or the proof backs the claim.
    believed: bool,
    on_open: Vec<OnOpen>,
    /// On a dialed session until the peer sends anything past its hello: what was asked
    /// on it. Crossed hellos may still abort it unread; then this is asked again on the
    /// session that wins.
    unread: Option<Vec<OnOpen>>,
    /// How many refused dials before this one carried what is asked on it.
    asked_again: u8,
    /// Its peer asked a `gobs:` question: it is told sturdyrefs with answers
    /// ([`told`]).
    gobs_peer: bool,
    /// The peer sent something since the last idle sweep ([`timers`]).
    heard: bool,
    /// How many idle sweeps in a row found the session empty and its peer silent.
    quiet_sweeps: u8,
}

impl SessionSlot {
    /// Whether the node believes its peer is who it claims: dialed by us, or proved.
    fn is_believed(&self) -> bool {
        self.dialed.is_some() || self.believed
    }
}

/// The node's state.
pub struct Core {
    config: SessionConfig,
    locator: PeerLocator,
    next_obj: u64,
    next_conn: u64,
    objects: IdMap<ObjId, Slot>,
    /// Boxed: a send takes its session out of the map and puts it back (the message may
    /// carry references to other sessions), which then moves a pointer, not the session.
    sessions: BTreeMap<ConnId, Box<SessionSlot>>,
    peers: HashMap<PeerLocator, ConnId>,
    /// What dials refused unread asked, by peer, until a session with it carries it.
    refused: HashMap<PeerLocator, Refused>,
    swiss: HashMap<[u8; 32], (Vec<u8>, LocalRef)>,
    gifts: HashMap<([u8; 32], Vec<u8>), CapRef>,
    awaiting_gifts: HashMap<([u8; 32], Vec<u8>), Vec<ObjId>>,
    queue: VecDeque<Work>,
    actions: Vec<Action>,
    /// Every session's dropped imports.
    drops: DropSink,
    /// What the last flush took from `drops`, emptied: swapped in for the next.
    dropped: Vec<(ConnId, u64)>,
    /// Sessions touched since the last flush (only they can have output or have ended).
    dirty: conn_set::ConnSet,
    /// Sessions that may hold `op:gc-answer`s waiting for their next message
    /// ([`Core::flush_deferred_gc`]).
    deferred_gc: conn_set::ConnSet,
    /// Swiss numbers minted for objects on a peer's request (`gobs:sturdyref`), by object,
    /// so asking twice gives the same sturdyref.
    minted: IdMap<ObjId, Vec<u8>>,
    /// Told of every swiss number minted, so a host can make it durable.
    on_mint: Option<MintHook>,
    /// Sturdyrefs peers told before their answers ([`told`]).
    told: told::Told,
    /// Objects the host keeps however many peers hold them ([`Core::pin`]).
    pinned: IdSet<ObjId>,
    /// How many swiss numbers name each object: those are kept too, until the last of
    /// their swiss numbers is revoked.
    bound: IdMap<ObjId, usize>,
    /// Swiss numbers revoked lately (their SHA-256), so a fetch of one says so.
    revoked: revoke::RevokedSwiss,
    /// Told of every swiss number revoked, so a host can forget it durably.
    on_revoke: Option<RevokeHook>,
    /// How many settled promises hold each local object (their values refer to it).
    held: IdMap<ObjId, usize>,
    /// Objects every peer let go of while a promise still held them: collected when the
    /// last such promise goes.
    released_while_held: IdSet<ObjId>,
    /// Caretakers bound to swiss numbers ([`Core::bind_revocable`]).
    caretakers: caretaker::Caretakers,
    /// When peers must have said hello by ([`Core::connected`]).
    hello_deadlines: timers::HelloDeadlines,
    /// When sessions with nothing in them are next looked for ([`Core::connected`]).
    idle_sweep: Option<std::time::Instant>,
    /// The peers of connections that ended lately, for errors about them.
    departed: reasons::Departed,
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
            objects: IdMap::default(),
            sessions: BTreeMap::new(),
            peers: HashMap::new(),
            refused: HashMap::new(),
            swiss: HashMap::new(),
            gifts: HashMap::new(),
            awaiting_gifts: HashMap::new(),
            queue: VecDeque::new(),
            actions: Vec::new(),
            drops: DropSink::new(),
            dropped: Vec::new(),
            dirty: conn_set::ConnSet::default(),
            deferred_gc: conn_set::ConnSet::default(),
            caretakers: caretaker::Caretakers::default(),
            pinned: IdSet::default(),
            bound: IdMap::default(),
            revoked: revoke::RevokedSwiss::default(),
            on_revoke: None,
            held: IdMap::default(),
            released_while_held: IdSet::default(),
            minted: IdMap::default(),
            on_mint: None,
            told: told::Told::default(),
            hello_deadlines: timers::HelloDeadlines::default(),
            idle_sweep: None,
            departed: reasons::Departed::default(),
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

    /// Whether peers get gobs actors' failures in full ([`SessionConfig::peer_error_detail`]).
    pub fn peer_error_detail(&self) -> bool {
        self.config.peer_error_detail
    }
}

/// An object hosted by a node.
pub trait LocalObject: Send + 'static {
    /// Handles one message; `Ok` fulfils the caller's promise, `Err` breaks it. Returning a
    /// promise reference resolves the caller's promise when that one settles.
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term>;

    /// The registry name of the gobs actor the object stands for, if it stands for one:
    /// what the bootstrap object's `gobs:actor-type` answers a peer (a typed far
    /// reference checks its type with it). `None` by default.
    fn actor_type(&self) -> Option<&str> {
        None
    }

    /// The node let go of the object (every peer that imported it dropped it, and nothing
    /// else on the node holds it); it is dropped after this returns.
    fn collected(&mut self, core: &mut Core) {
        let _ = core;
    }
}

impl<F> LocalObject for F
where
    F: FnMut(&mut Cx<'_>, Vec<Term>) -> Result<Term, Term> + Send + 'static,
{
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        self(cx, args)
    }
}

/// What an object may do while handling a message.
pub struct Cx<'a> {
    pub(crate) core: &'a mut Core,
    pub(crate) me: LocalRef,
    /// The session the message came in on; `None` for one sent on this node.
    pub(crate) from: Option<ConnId>,
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cx({:?})", self.me)
    }
}

impl Cx<'_> {
    /// The object handling the message.
    pub fn me(&self) -> LocalRef {
        self.me
    }

    /// The session the message came in on (also when it waited on a promise of this node
    /// first); `None` for a message sent on this node, by its host or one of its objects.
    pub fn caller_session(&self) -> Option<ConnId> {
        self.from
    }

    /// The location of the peer that sent the message, if the node believes it: a
    /// session it dialed, or one whose netlayer proved that location (over tcp-tls, the
    /// peer's certificate). What an object may trust a caller for; `None` for a message
    /// sent on this node, or from a peer whose location is only claimed, or whose session
    /// has ended since.
    pub fn caller(&self) -> Option<PeerLocator> {
        self.core.believed_location(self.from?)
    }

    /// The node's core, for a host whose objects need more than this context offers (the
    /// vat bridge carries references in and out through it).
    pub fn core(&mut self) -> &mut Core {
        self.core
    }

    /// Hosts a new object and returns a reference to it.
    pub fn spawn(&mut self, obj: impl LocalObject) -> Term {
        Term::local(self.core.spawn(Box::new(obj)))
    }

    /// A new promise and the resolver object that settles it (send it `fulfill v` or
    /// `break e`).
    pub fn promise(&mut self) -> (LocalRef, LocalRef) {
        let p = self.core.new_promise();
        let r = self.core.new_resolver(p.id, None);
        (p, r)
    }

    /// Settles a promise made by [`Cx::promise`].
    pub fn resolve(&mut self, promise: LocalRef, outcome: Result<Term, Term>) {
        self.core.settle(promise.id, outcome);
    }

    /// Sends `args` to `to` (local or remote) and returns a promise for the answer.
    pub fn send(&mut self, to: &CapRef, args: Vec<Term>) -> LocalRef {
        let p = self.core.new_promise();
        self.core
            .enqueue_deliver(to.clone(), args, Some(p.id), None);
        p
    }

    /// Sends `args` to `to` without wanting an answer.
    pub fn send_only(&mut self, to: &CapRef, args: Vec<Term>) {
        self.core.enqueue_deliver(to.clone(), args, None, None);
    }

    /// Connects to the sturdyref's node (reusing a session to it if there is one) and
    /// returns a promise for the live reference.
    pub fn enliven(&mut self, sturdyref: &Sturdyref) -> LocalRef {
        self.core.enliven(sturdyref)
    }
}
