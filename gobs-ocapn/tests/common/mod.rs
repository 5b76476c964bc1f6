//! What the socket tests share: nodes on loopback TCP, and the raw-Syrup peer of the pair
//! harness (`gobs_ocapn_proto::testing::Peer`) over a real socket, for tests of what runs
//! above the protocol core (vats, persistence, netlayers). The protocol itself is tested
//! in gobs-ocapn-proto, on the simulated network.
//!
//! Nothing here sleeps: a test waits for an event — an answer, the end of a stream —
//! never for time to pass. [`HANG`] only bounds a hang.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub mod child;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::fixtures;
use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::netlayer::{
    Accepted, BoxFuture, Netlayer, Stream, TcpTestingOnly, TcpTls, TlsIdentity,
};
use gobs_ocapn::node::Node;
pub use gobs_ocapn_proto::testing::{
    Wire, WireRead, answer, export, import_object, import_promise, int, my_location, position, rec,
    sym,
};

/// The longest any wait in these tests may last. Only a hung node reaches it: each step
/// takes milliseconds even on a loaded machine, so it bounds a hang and is no budget.
pub const HANG: Duration = Duration::from_secs(120);

/// `f`'s output, or a panic once [`HANG`] has passed: a test fails rather than hangs.
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG, f)
        .await
        .unwrap_or_else(|_| panic!("no answer within {HANG:?}"))
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
    let gobs_ocapn::captp::Term::Ref(gobs_ocapn::captp::CapRef::Local(obj)) =
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
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        );
        let node = rt.block_on(async {
            let node = tcp_node().await;
            node.with_core(fixtures::install).await.unwrap();
            node
        });
        TestNode {
            locator: node.locator().clone(),
            node,
            rt,
        }
    }

    /// How many objects the node hosts now (after a [`TcpPeer::sync`] or
    /// [`TcpPeer::close`], everything that peer sent has been handled).
    pub fn objects(&self) -> usize {
        let n = self.node.clone();
        self.rt
            .block_on(async move { n.with_core(|c| c.object_count()).await.unwrap() })
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

/// A blocking TCP stream as a [`Wire`]; a read that waits [`HANG`] finds the node quiet.
pub struct TcpWire(pub TcpStream);

impl Wire for TcpWire {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    fn read(&mut self, buf: &mut Vec<u8>) -> WireRead {
        let mut chunk = [0u8; 65536];
        match self.0.read(&mut chunk) {
            Ok(0) => WireRead::Ended,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                WireRead::Data
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => WireRead::Ended,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                WireRead::Quiet
            }
            Err(e) => panic!("read from node failed: {e}"),
        }
    }
}

/// The harness's raw peer over a socket.
pub type Peer = gobs_ocapn_proto::testing::Peer<TcpWire>;

/// What a raw peer does over a socket that it cannot on the simulated network.
pub trait TcpPeer: Sized {
    /// Connects to `addr`, to say hello (once asked) from `location`.
    fn connect(addr: SocketAddr, location: gobs_ocapn::syrup::Value) -> Self;
    /// A round trip to the node's bootstrap object: when it returns, the node has handled
    /// everything this peer sent before (a connection is read in order).
    fn sync(&mut self);
    /// Closes our half of the connection and reads until the node closes its own, which
    /// it does once it has handled the end of the session.
    fn close(self);
}

impl TcpPeer for Peer {
    fn connect(addr: SocketAddr, location: gobs_ocapn::syrup::Value) -> Peer {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        Peer::over(TcpWire(stream), location)
    }

    fn sync(&mut self) {
        let r = self.deliver(export(0), vec![sym("gobs:test-sync")], None);
        let res = self.resolution(r);
        assert_eq!(
            res[0],
            sym("break"),
            "the bootstrap has no such method: {res:?}"
        );
    }

    fn close(mut self) {
        self.wire().0.shutdown(Shutdown::Write).unwrap();
        while self.recv().is_some() {}
    }
}

/// A tcp-tls netlayer that names its node with someone else's locator: the node then
/// claims that location in every session it opens.
pub struct Impostor {
    pub inner: TcpTls,
    pub claims: PeerLocator,
}

impl Netlayer for Impostor {
    fn transport(&self) -> &str {
        self.inner.transport()
    }
    fn locator(&self) -> PeerLocator {
        self.claims.clone()
    }
    fn can_accept(&self) -> bool {
        false
    }
    fn accept(&self) -> BoxFuture<'_, std::io::Result<Accepted>> {
        self.inner.accept()
    }
    fn connect(&self, peer: &PeerLocator) -> BoxFuture<'static, std::io::Result<Stream>> {
        self.inner.connect(peer)
    }
}

/// A node on tcp-tls at 127.0.0.1 (any free port) with `identity`.
pub async fn tls_node(identity: &TlsIdentity, config: SessionConfig) -> Node {
    let n = TcpTls::bind("127.0.0.1:0".parse().unwrap(), identity, None)
        .await
        .unwrap();
    Node::start(vec![Arc::new(n) as Arc<dyn Netlayer>], config).unwrap()
}
