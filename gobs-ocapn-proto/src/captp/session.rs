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
use std::sync::Weak;

mod config;
mod event;
mod exports;
mod imports;
mod incoming;
mod outgoing;
#[cfg(test)]
mod wire_tests;

pub use config::{DuplicateSession, HELLO_TIMEOUT, IDLE_TIMEOUT, SessionConfig};
pub use event::Event;
pub use exports::ThirdParty;
pub use outgoing::{MAX_DEFERRED_GC_ANSWERS, OutTarget};

use super::CAPTP_VERSION;
use super::keys::{KeyPair, PublicKey};
use super::term::{ConnId, DropSink, ImportInner, LocalRef, ObjId};
use super::{Dialect, Labels, hot};
use crate::id_hash::IdMap;
use crate::locator::PeerLocator;
use crate::syrup::{self, SyrupError, Value};

/// One of our objects the peer holds: its export count (what `op:gc-export` lets go of).
#[derive(Debug)]
struct ExportEntry {
    obj: LocalRef,
    count: u64,
}

/// One of the peer's objects we hold: its count on the wire and our handle to it.
#[derive(Debug)]
struct ImportEntry {
    wire_count: u64,
    handle: Weak<ImportInner>,
}

/// What an open session knows of its peer.
#[derive(Debug)]
struct OpenState {
    remote_key: PublicKey,
    remote_location: PeerLocator,
    remote_location_value: Value,
    id: [u8; 32],
}

/// Where the session is in its life.
#[derive(Debug)]
enum State {
    AwaitingHello,
    Open(Box<OpenState>),
    Aborted,
}

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
    /// Keyed by our own positions and ids (a peer chooses neither).
    exports: IdMap<u64, ExportEntry>,
    export_of: IdMap<ObjId, u64>,
    next_export: u64,
    imports: HashMap<u64, ImportEntry>,
    answers: HashMap<u64, LocalRef>,
    next_question: u64,
    labels: Labels,
    drops: DropSink,
    handoff_counts_seen: HashSet<u64>,
    next_handoff_count: u64,
    /// Answers let go of whose `op:gc-answer` waits for the next message (see
    /// [`SessionConfig::defer_gc_answers`]).
    deferred_gc: Vec<u64>,
    /// Where a message's arguments are written before the message goes out (kept, so
    /// that a call allocates nothing for them).
    scratch: Vec<u8>,
}

/// The room a session's output starts with once taken: a far call and the answers it lets
/// go of (about 100 bytes) fit.
const OUTPUT_START: usize = 256;

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
            exports: IdMap::default(),
            export_of: IdMap::default(),
            next_export: 1,
            imports: HashMap::new(),
            answers: HashMap::new(),
            drops: DropSink::new(),
            handoff_counts_seen: HashSet::new(),
            next_handoff_count: 0,
            deferred_gc: Vec::new(),
            scratch: Vec::new(),
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
            // A far call's ops are read straight from the bytes; any other frame (or one
            // not all there yet) goes the general way.
            if matches!(self.state, State::Open(_))
                && let Some((op, used, learnt)) = hot::read(pending, &self.config.limits)
                && used <= self.config.max_frame
            {
                self.inpos += used;
                if let (Dialect::Learn, Some(labels)) = (self.config.dialect, learnt) {
                    self.labels = labels;
                }
                if let Err(e) = self.handle_hot(op) {
                    self.abort(&e.to_string());
                }
                continue;
            }
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
            if let Err(e) = self.handle_frame(frame) {
                self.abort(&e.to_string());
            }
        }
    }

    fn write(&mut self, v: &Value) {
        self.write_with(|out| syrup::encode_into(v, out));
    }

    /// Writes a message whose bytes `encode` appends (a hot one, written without building
    /// its value first).
    fn write_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.out.capacity() == 0 {
            // The output was taken (it leaves as it is): room for a usual message at once,
            // not a growth from a few bytes per push.
            self.out.reserve(OUTPUT_START);
        }
        // Answers let go of earlier leave first, with this message.
        self.flush_gc_answers();
        encode(&mut self.out);
    }

    /// Ends the session: sends `op:abort` with `reason` and emits [`Event::Aborted`].
    /// Imports held in [`RemoteRef`](super::RemoteRef)s no longer reach anything.
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
}
