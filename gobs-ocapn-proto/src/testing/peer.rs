//! A raw-Syrup CapTP peer on the simulated network: hand-built messages, no node logic
//! of its own, so a test checks a node the way the public conformance suite does, byte
//! for byte.
//!
//! On the simulated network, reading never blocks: it moves frames through the network
//! until a message for this peer arrives. If the network goes quiet first, no message will
//! ever come, and the read panics saying what it waited for (a socket test would hang).
//! Over another [`Wire`] (a socket in gobs-ocapn's tests) it is the same peer.

use crate::captp::{KeyPair, PublicKey, session_id};
use crate::locator::PeerLocator;
use crate::syrup::{self, Limits, SyrupError, Value};

use super::net::{LinkId, Net};
use super::node::SimNode;
use super::wire::{SimWire, Wire, WireRead};

/// A symbol.
pub fn sym(s: &str) -> Value {
    Value::symbol(s)
}

/// A record.
pub fn rec(label: &str, args: Vec<Value>) -> Value {
    Value::record(label, args)
}

/// An integer.
pub fn int(i: u64) -> Value {
    Value::from(i)
}

/// `<desc:export p>`: the node's export at position `p`, as the peer names it.
pub fn export(p: u64) -> Value {
    rec("desc:export", vec![int(p)])
}

/// `<desc:answer p>`: the answer to the peer's question `p`.
pub fn answer(p: u64) -> Value {
    rec("desc:answer", vec![int(p)])
}

/// `<desc:import-object p>`: the peer's own object at position `p`.
pub fn import_object(p: u64) -> Value {
    rec("desc:import-object", vec![int(p)])
}

/// `<desc:import-promise p>`: the peer's own promise at position `p`.
pub fn import_promise(p: u64) -> Value {
    rec("desc:import-promise", vec![int(p)])
}

/// A `tcp-testing-only` peer location (the transport the public suite's peers use, so a
/// node writes them the suite's labels).
pub fn my_location(tag: &str, port: u16) -> Value {
    rec(
        "ocapn-peer",
        vec![
            sym("tcp-testing-only"),
            Value::from(tag),
            Value::Dict(vec![
                (Value::from("host"), Value::from("127.0.0.1")),
                (Value::from("port"), Value::from(port.to_string())),
            ]),
        ],
    )
}

/// Raw peers on the network.
impl Net {
    /// A raw peer connecting to `node`, introducing itself with `location` (an
    /// `<ocapn-peer …>` value) once it says hello.
    pub fn connect(&self, node: &SimNode, location: Value) -> Peer {
        self.connect_proving(
            node,
            location,
            crate::node::PeerProof::Unauthenticated { transport: None },
        )
    }

    /// [`Net::connect`], over a connection of which the netlayer proved `proof`.
    pub fn connect_proving(
        &self,
        node: &SimNode,
        location: Value,
        proof: crate::node::PeerProof,
    ) -> Peer {
        let link = self.accept_raw(node.index(), proof);
        Peer::sim(self.clone(), link, location)
    }

    /// A raw peer reachable at `location`: a node dialing its locator connects to it, and
    /// [`Listener::accept`] takes the connection.
    pub fn listen(&self, location: Value) -> Listener {
        let locator = PeerLocator::from_value(&location)
            .unwrap_or_else(|e| panic!("{location:?} is not a peer location: {e}"));
        self.add_listener(locator.clone());
        Listener {
            net: self.clone(),
            location,
            locator,
        }
    }
}

/// Where a raw peer waits for nodes to dial it ([`Net::listen`]).
#[derive(Debug)]
pub struct Listener {
    net: Net,
    location: Value,
    locator: PeerLocator,
}

impl Listener {
    /// The next connection a node made to this location, once the network has carried
    /// what is in flight; panics if no node dials it.
    pub fn accept(&self) -> Peer {
        self.net.drive();
        let link = self
            .net
            .world
            .borrow_mut()
            .take_dialed(&self.locator)
            .unwrap_or_else(|| panic!("no node dialed {}", self.locator.to_uri()));
        Peer::sim(self.net.clone(), link, self.location.clone())
    }
}

/// One raw connection to a node. Dropping it closes the connection.
pub struct Peer<W: Wire = SimWire> {
    wire: W,
    inbox: Vec<u8>,
    /// The peer's session keys.
    pub keys: KeyPair,
    /// The location it says hello with.
    pub location: Value,
    /// The node's session key, once [`Peer::setup`] read its hello.
    pub remote_key: Option<PublicKey>,
    next_import: u64,
    next_answer: u64,
}

impl<W: Wire> std::fmt::Debug for Peer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Peer({:?})", self.location)
    }
}

/// What one read found.
enum Read {
    Message(Value),
    Ended,
    Quiet,
}

impl Peer<SimWire> {
    pub(super) fn sim(net: Net, link: LinkId, location: Value) -> Peer {
        Peer::over(SimWire { net, link }, location)
    }

    /// The link this peer's connection runs on (to delay, hold or cut it).
    pub fn link(&self) -> LinkId {
        self.wire.link
    }

    /// Closes the connection and lets the network carry the close (the node has then
    /// seen it end).
    pub fn close(self) {
        let net = self.wire.net.clone();
        drop(self);
        net.drive();
    }
}

impl<W: Wire> Peer<W> {
    /// A peer over `wire`, saying hello (once asked) from `location`.
    pub fn over(wire: W, location: Value) -> Peer<W> {
        Peer {
            wire,
            inbox: Vec::new(),
            keys: KeyPair::generate().expect("no randomness for a test key"),
            location,
            remote_key: None,
            next_import: 1,
            next_answer: 0,
        }
    }

    /// The wire this peer talks over.
    pub fn wire(&mut self) -> &mut W {
        &mut self.wire
    }

    /// Sends a message (it arrives as the network runs).
    pub fn send(&mut self, v: &Value) {
        self.send_raw(&syrup::encode(v));
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.wire.write(bytes);
    }

    fn read(&mut self) -> Read {
        loop {
            match syrup::decode_prefix(&self.inbox, &Limits::default()) {
                Ok((v, used)) => {
                    self.inbox.drain(..used);
                    return Read::Message(v);
                }
                Err(SyrupError::Incomplete) => {}
                Err(e) => panic!("the node sent bad Syrup: {e}"),
            }
            match self.wire.read(&mut self.inbox) {
                WireRead::Data => {}
                WireRead::Ended => return Read::Ended,
                WireRead::Quiet => return Read::Quiet,
            }
        }
    }

    /// The next message, or `None` once the node closed the connection. Panics if the
    /// network goes quiet first: the node will never send one.
    pub fn recv(&mut self) -> Option<Value> {
        match self.read() {
            Read::Message(v) => Some(v),
            Read::Ended => None,
            Read::Quiet => panic!("{self:?} waits for a message, but the node will never send one"),
        }
    }

    /// The next message, or `None` if the connection ended or nothing more is in flight.
    pub fn try_recv(&mut self) -> Option<Value> {
        match self.read() {
            Read::Message(v) => Some(v),
            Read::Ended | Read::Quiet => None,
        }
    }

    /// Reads until a message with this label arrives (others are skipped).
    pub fn expect(&mut self, label: &str) -> Value {
        loop {
            let m = self
                .recv()
                .unwrap_or_else(|| panic!("the connection ended while waiting for {label}"));
            if m.as_record().map(|r| r.0) == Some(label) {
                return m;
            }
        }
    }

    /// Reads until a deliver(-only) to `to` arrives; returns it and its args.
    pub fn expect_to(&mut self, to: &Value) -> (Value, Vec<Value>) {
        loop {
            let m = self
                .recv()
                .expect("the connection ended while waiting for a deliver");
            if let Some((l, f)) = m.as_record()
                && (l == "op:deliver" || l == "op:deliver-only")
                && &f[0] == to
            {
                let args = f[1]
                    .as_list()
                    .expect("a deliver's args are a list")
                    .to_vec();
                return (m.clone(), args);
            }
        }
    }

    /// Our `op:start-session`, claiming CapTP `version`.
    pub fn hello(&self, version: &str) -> Value {
        let sig = self
            .keys
            .sign_value(&rec("my-location", vec![self.location.clone()]));
        rec(
            "op:start-session",
            vec![
                Value::from(version),
                self.keys.public().to_value(),
                self.location.clone(),
                sig,
            ],
        )
    }

    /// Sends our hello and reads theirs (checking its signature).
    pub fn setup(&mut self) -> Value {
        let h = self.hello("1.0");
        self.send(&h);
        let theirs = self.expect("op:start-session");
        let f = theirs.as_record().expect("a record").1;
        let key = PublicKey::from_value(&f[1]).expect("the node's session key");
        key.verify_value(&rec("my-location", vec![f[2].clone()]), &f[3])
            .expect("the node's hello is signed with its session key");
        self.remote_key = Some(key);
        theirs
    }

    /// The session's id (once [`Peer::setup`] is done).
    pub fn session_id(&self) -> [u8; 32] {
        let theirs = self
            .remote_key
            .as_ref()
            .expect("no hello from the node yet");
        session_id(&self.keys.public(), theirs)
    }

    /// A fresh position for one of our objects.
    pub fn next_import(&mut self) -> u64 {
        let p = self.next_import;
        self.next_import += 1;
        p
    }

    /// A fresh answer position (numbered from 0, as the suite does).
    pub fn next_answer(&mut self) -> u64 {
        let p = self.next_answer;
        self.next_answer += 1;
        p
    }

    /// Delivers with a fresh resolver; returns the resolver's position.
    pub fn deliver(&mut self, to: Value, args: Vec<Value>, answer_pos: Option<u64>) -> u64 {
        let r = self.next_import();
        self.send(&rec(
            "op:deliver",
            vec![
                to,
                Value::List(args),
                answer_pos.map(int).unwrap_or(Value::Bool(false)),
                import_object(r),
            ],
        ));
        r
    }

    /// Waits for the settled resolution sent to our resolver `r`, listening through
    /// promises; returns `[fulfill|break, value]`.
    pub fn resolution(&mut self, mut r: u64) -> Vec<Value> {
        loop {
            let (_, args) = self.expect_to(&export(r));
            if args[0] == sym("fulfill")
                && let Some(("desc:import-promise", [p])) = args[1].as_record()
            {
                let p = position(p);
                r = self.next_import();
                self.send(&rec(
                    "op:listen",
                    vec![export(p), import_object(r), Value::Bool(true)],
                ));
                continue;
            }
            return args;
        }
    }

    /// Fetches `swiss` from the node's bootstrap object; the export it gives.
    pub fn fetch(&mut self, swiss: &[u8]) -> Value {
        let r = self.deliver(
            export(0),
            vec![sym("fetch"), Value::Bytes(swiss.to_vec())],
            None,
        );
        let res = self.resolution(r);
        assert_eq!(res[0], sym("fulfill"), "fetch broke: {res:?}");
        match res[1].as_record() {
            Some(("desc:import-object", [p])) => export(position(p)),
            other => panic!("fetch gave {other:?}"),
        }
    }

    /// A fresh promise and its resolver from the conformance fixture, as the
    /// `desc:export`s to send to.
    pub fn promise_pair(&mut self) -> (Value, Value) {
        let resolver = self.fetch(crate::fixtures::PROMISE_RESOLVER);
        let r = self.deliver(resolver, vec![], None);
        let res = self.resolution(r);
        assert_eq!(res[0], sym("fulfill"), "the promise fixture broke: {res:?}");
        let pair = res[1].as_list().expect("a promise and its resolver");
        assert_eq!(
            pair[0].as_record().map(|r| r.0),
            Some("desc:import-promise")
        );
        let as_export = |v: &Value| export(position(&v.as_record().expect("a descriptor").1[0]));
        (as_export(&pair[0]), as_export(&pair[1]))
    }

    /// Sends `op:abort`.
    pub fn abort(&mut self, reason: &str) {
        self.send(&rec("op:abort", vec![Value::from(reason)]));
    }

    /// Sends `op:gc-export` for `count` references to the node's export at `pos`.
    pub fn gc_export(&mut self, pos: u64, count: u64) {
        self.send(&rec(
            "op:gc-export",
            vec![Value::List(vec![int(pos)]), Value::List(vec![int(count)])],
        ));
    }

    /// The `op:gc-export` deltas for our export `pos` the node sends until the network
    /// goes quiet (or the connection ends).
    pub fn gc_export_total(&mut self, pos: u64) -> i128 {
        let mut total = 0;
        while let Some(m) = self.try_recv() {
            if let Some(("op:gc-export", [ps, ds])) = m.as_record() {
                let (ps, ds) = (ps.as_list().unwrap_or(&[]), ds.as_list().unwrap_or(&[]));
                for (p, d) in ps.iter().zip(ds) {
                    if p.as_int() == Some(i128::from(pos)) {
                        total += d.as_int().expect("a delta is an integer");
                    }
                }
            }
        }
        total
    }
}

/// A descriptor's position.
pub fn position(v: &Value) -> u64 {
    v.as_int()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or_else(|| panic!("{v:?} is not a position"))
}
