//! A raw-Syrup CapTP peer for wire-level tests: blocking sockets, hand-built messages,
//! no node logic of its own — it checks the node the way the public conformance suite
//! does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gobs_ocapn::captp::{KeyPair, PublicKey, SessionConfig, session_id};
use gobs_ocapn::fixtures;
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::netlayer::{Netlayer, TcpTestingOnly};
use gobs_ocapn::node::Node;
use gobs_ocapn::syrup::{self, Limits, SyrupError, Value};

/// The longest any wait in these tests may last. Only a hung node reaches it: each step
/// takes milliseconds even on a loaded machine, so it bounds a hang and is no budget.
pub const HANG: Duration = Duration::from_secs(120);

/// Polls `probe` until it gives a value (the condition a test waits for has come about),
/// backing off from 1 ms to 50 ms between looks; `None` once [`HANG`] has passed.
pub fn poll<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + HANG;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// [`poll`] for async probes, on the caller's runtime.
pub async fn poll_async<T, F: std::future::Future<Output = Option<T>>>(
    mut probe: impl FnMut() -> F,
) -> Option<T> {
    let deadline = Instant::now() + HANG;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// `f`'s output, or a panic once [`HANG`] has passed: a test fails rather than hangs.
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG, f)
        .await
        .unwrap_or_else(|_| panic!("no answer within {HANG:?}"))
}

pub fn sym(s: &str) -> Value {
    Value::symbol(s)
}
pub fn rec(label: &str, args: Vec<Value>) -> Value {
    Value::record(label, args)
}
pub fn int(i: u64) -> Value {
    Value::from(i)
}
pub fn export(p: u64) -> Value {
    rec("desc:export", vec![int(p)])
}
pub fn answer(p: u64) -> Value {
    rec("desc:answer", vec![int(p)])
}
pub fn import_object(p: u64) -> Value {
    rec("desc:import-object", vec![int(p)])
}

/// A node on tcp-testing-only at 127.0.0.1 (any free port), on the caller's runtime.
pub async fn tcp_node() -> Node {
    let n = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Node::start(
        vec![Arc::new(n) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap()
}

/// Exports `actor` on `node` under `swiss`; its sturdyref.
pub async fn publish<T: gobs_runtime::Actor>(
    node: &Node,
    actor: gobs_runtime::Ref<T>,
    swiss: &'static [u8],
) -> gobs_ocapn::locator::Sturdyref {
    let gobs_ocapn::captp::Term::Ref(gobs_ocapn::captp::Ref::Local(obj)) =
        gobs_ocapn::vat::export_actor(node, actor).await.unwrap()
    else {
        panic!("exporting an actor gave no local reference")
    };
    node.with_core(move |c| c.bind_swiss(swiss, obj))
        .await
        .unwrap();
    gobs_ocapn::locator::Sturdyref {
        peer: node.locator().clone(),
        swiss: swiss.to_vec(),
    }
}

/// A node running the conformance fixtures on its own runtime thread.
pub struct TestNode {
    pub locator: PeerLocator,
    pub node: Node,
    pub rt: Arc<tokio::runtime::Runtime>,
}

impl TestNode {
    pub fn start() -> TestNode {
        Self::start_with(SessionConfig::default())
    }

    pub fn start_with(config: SessionConfig) -> TestNode {
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        );
        let node = rt.block_on(async {
            let n = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let node = Node::start(vec![Arc::new(n) as Arc<dyn Netlayer>], config).unwrap();
            node.with_core(fixtures::install).await.unwrap();
            node
        });
        TestNode {
            locator: node.locator().clone(),
            node,
            rt,
        }
    }

    /// How many objects the node hosts now.
    pub fn objects(&self) -> usize {
        let n = self.node.clone();
        self.rt
            .block_on(async move { n.with_core(|c| c.object_count()).await.unwrap() })
    }

    /// Waits for the node's object count to reach `want` (collection runs as messages
    /// arrive); the count then, which differs from `want` only if [`HANG`] passed.
    pub fn settles_at(&self, want: usize) -> usize {
        self.objects_when(|n| n == want)
    }

    /// Waits for the node's object count to satisfy `done`; the count then (which does
    /// not satisfy it only if [`HANG`] passed).
    pub fn objects_when(&self, done: impl Fn(usize) -> bool) -> usize {
        let mut last = 0;
        poll(|| {
            last = self.objects();
            done(last).then_some(last)
        })
        .unwrap_or(last)
    }

    /// How many sessions the node has open with the peer named `designator`.
    pub fn sessions_with(&self, designator: &str) -> usize {
        let n = self.node.clone();
        let stats = self
            .rt
            .block_on(async move { n.with_core(|c| c.session_stats()).await.unwrap() });
        stats
            .iter()
            .filter(|(_, peer, _, _)| peer.as_ref().is_some_and(|p| p.designator == designator))
            .count()
    }

    pub fn addr(&self) -> SocketAddr {
        format!(
            "{}:{}",
            self.locator.hint("host").unwrap(),
            self.locator.hint("port").unwrap()
        )
        .parse()
        .unwrap()
    }
}

/// One raw connection.
pub struct Peer {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub keys: KeyPair,
    pub location: Value,
    pub remote_key: Option<PublicKey>,
    next_import: u64,
    next_answer: u64,
    next_handoff: u64,
}

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

impl Peer {
    pub fn connect(addr: SocketAddr, location: Value) -> Peer {
        let stream = TcpStream::connect(addr).unwrap();
        Peer::over(stream, location)
    }

    pub fn over(stream: TcpStream, location: Value) -> Peer {
        stream.set_read_timeout(Some(HANG)).unwrap();
        Peer {
            stream,
            buf: Vec::new(),
            keys: KeyPair::generate().unwrap(),
            location,
            remote_key: None,
            next_import: 1,
            next_answer: 0,
            next_handoff: 0,
        }
    }

    pub fn send(&mut self, v: &Value) {
        self.stream.write_all(&syrup::encode(v)).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next message, or None at end of stream.
    pub fn recv(&mut self) -> Option<Value> {
        loop {
            match syrup::decode_prefix(&self.buf, &Limits::default()) {
                Ok((v, used)) => {
                    self.buf.drain(..used);
                    return Some(v);
                }
                Err(SyrupError::Incomplete) => {}
                Err(e) => panic!("node sent bad syrup: {e}"),
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read from node failed: {e}"),
            }
        }
    }

    /// Reads until a message with this label arrives (others are skipped).
    pub fn expect(&mut self, label: &str) -> Value {
        let deadline = Instant::now() + HANG;
        while Instant::now() < deadline {
            let m = self
                .recv()
                .unwrap_or_else(|| panic!("connection ended while waiting for {label}"));
            if m.as_record().map(|r| r.0) == Some(label) {
                return m;
            }
        }
        panic!("no {label} within {HANG:?}");
    }

    /// Reads until a deliver(-only) to `to` arrives; returns its args.
    pub fn expect_to(&mut self, to: &Value) -> (Value, Vec<Value>) {
        loop {
            let m = self
                .recv()
                .expect("connection ended while waiting for a deliver");
            if let Some((l, f)) = m.as_record()
                && (l == "op:deliver" || l == "op:deliver-only")
                && &f[0] == to
            {
                let args = f[1].as_list().unwrap().to_vec();
                return (m.clone(), args);
            }
        }
    }

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

    /// Sends our hello and reads theirs.
    pub fn setup(&mut self) -> Value {
        let h = self.hello("1.0");
        self.send(&h);
        let theirs = self.expect("op:start-session");
        let f = theirs.as_record().unwrap().1;
        let key = PublicKey::from_value(&f[1]).unwrap();
        key.verify_value(&rec("my-location", vec![f[2].clone()]), &f[3])
            .unwrap();
        self.remote_key = Some(key);
        theirs
    }

    pub fn session_id(&self) -> [u8; 32] {
        session_id(&self.keys.public(), self.remote_key.as_ref().unwrap())
    }

    pub fn next_import(&mut self) -> u64 {
        let p = self.next_import;
        self.next_import += 1;
        p
    }

    pub fn next_answer(&mut self) -> u64 {
        let p = self.next_answer;
        self.next_answer += 1;
        p
    }

    pub fn next_handoff(&mut self) -> u64 {
        let p = self.next_handoff;
        self.next_handoff += 1;
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
    /// promises; returns [fulfill|break, value].
    pub fn resolution(&mut self, mut r: u64) -> Vec<Value> {
        loop {
            let (_, args) = self.expect_to(&export(r));
            if args[0] == sym("fulfill")
                && let Some(("desc:import-promise", [p])) = args[1].as_record()
            {
                let p = p.as_int().unwrap() as u64;
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

    pub fn fetch(&mut self, swiss: &[u8]) -> Value {
        let r = self.deliver(
            export(0),
            vec![sym("fetch"), Value::Bytes(swiss.to_vec())],
            None,
        );
        let res = self.resolution(r);
        assert_eq!(res[0], sym("fulfill"), "fetch broke: {res:?}");
        match res[1].as_record() {
            Some(("desc:import-object", [p])) => export(p.as_int().unwrap() as u64),
            other => panic!("fetch gave {other:?}"),
        }
    }

    /// A fresh promise and its resolver from the conformance fixture, as the `desc:export`s
    /// to send to (the promise's position is `export`'s argument).
    pub fn promise_pair(&mut self) -> (Value, Value) {
        let resolver = self.fetch(fixtures::PROMISE_RESOLVER);
        let r = self.deliver(resolver, vec![], None);
        let res = self.resolution(r);
        assert_eq!(res[0], sym("fulfill"), "the promise fixture broke: {res:?}");
        let pair = res[1].as_list().expect("a promise and its resolver");
        let as_export = |v: &Value| {
            export(
                v.as_record().expect("a descriptor").1[0]
                    .as_int()
                    .expect("a position") as u64,
            )
        };
        assert_eq!(
            pair[0].as_record().map(|r| r.0),
            Some("desc:import-promise")
        );
        (as_export(&pair[0]), as_export(&pair[1]))
    }

    pub fn abort(&mut self, reason: &str) {
        self.send(&rec("op:abort", vec![Value::from(reason)]));
    }

    /// Collects op:gc-export deltas for `pos` until they reach `want` (or [`HANG`] passes,
    /// or the connection ends); the total then.
    pub fn gc_export_total(&mut self, pos: u64, want: i128) -> i128 {
        let mut total = 0;
        let deadline = Instant::now() + HANG;
        while total < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let Some(m) = self.recv_or_timeout() else {
                break;
            };
            if let Some(("op:gc-export", [ps, ds])) = m.as_record() {
                for (p, d) in ps.as_list().unwrap().iter().zip(ds.as_list().unwrap()) {
                    if p.as_int() == Some(pos as i128) {
                        total += d.as_int().unwrap();
                    }
                }
            }
        }
        self.stream.set_read_timeout(Some(HANG)).unwrap();
        total
    }

    pub fn recv_or_timeout(&mut self) -> Option<Value> {
        loop {
            if let Ok((v, used)) = syrup::decode_prefix(&self.buf, &Limits::default()) {
                self.buf.drain(..used);
                return Some(v);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return None,
            }
        }
    }
}

/// A listening socket standing for another peer.
pub fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Accepts one connection, or panics after [`HANG`] (a test must fail, not hang).
pub fn accept_within(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let stream = poll(|| match l.accept() {
        Ok((s, _)) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("accepting the node's connection failed: {e}"),
    })
    .unwrap_or_else(|| panic!("the node did not connect within {HANG:?}"));
    stream.set_nonblocking(false).unwrap();
    stream
}
