//! The daemon's machine listener as any local process meets it, for black-box tests of
//! what a hostile peer can do to it: where a process listens (from `/proc`, as `ss` would
//! say), which tcp-tls node answers there (its certificate preamble names it), how many
//! descriptors a process holds, and an OCapN node that claims another node's location.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::locator::{PeerLocator, Sturdyref};
use gobs_ocapn::netlayer::{
    Accepted, BoxFuture, Netlayer, Stream, TcpTls, TlsIdentity, designator_of,
};
use gobs_ocapn::node::Node;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{HANG, proc_net};

/// A runtime for the test's side of the network (one thread: the test's peers are few
/// and mostly wait).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// How many descriptors process `pid` holds.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The inodes of process `pid`'s sockets (`/proc/PID/fd` links to `socket:[INODE]`).
fn socket_inodes(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect()
}

/// Process `pid`'s TCP sockets, from its network namespace's tables.
fn tcp_sockets(pid: u32) -> Vec<proc_net::TcpSocket> {
    let inodes = socket_inodes(pid);
    proc_net::sockets(&format!("/proc/{pid}/net"))
        .into_iter()
        .filter(|s| inodes.contains(&s.inode))
        .collect()
}

/// The TCP addresses process `pid` listens on.
pub fn tcp_listeners(pid: u32) -> Vec<SocketAddr> {
    tcp_sockets(pid)
        .into_iter()
        .filter(|s| s.listening)
        .map(|s| s.local)
        .collect()
}

/// How many connections process `pid` holds that were accepted on its listener at
/// `listener`.
pub fn accepted_at(pid: u32, listener: SocketAddr) -> usize {
    tcp_sockets(pid)
        .iter()
        .filter(|s| !s.listening && s.local == listener)
        .count()
}

/// The one TCP address process `pid` listens on; fails the test if it has none or several.
pub fn the_tcp_listener(pid: u32) -> SocketAddr {
    let all = tcp_listeners(pid);
    assert_eq!(
        all.len(),
        1,
        "process {pid} listens on {all:?}, not one address"
    );
    all[0]
}

/// A TCP connection to `to` from the loopback address `from` (any of 127.0.0.0/8: each
/// is a source address of its own to the listener).
pub async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    within("connecting", socket.connect(to)).await.unwrap()
}

/// The certificate a tcp-tls listener sends first on `stream` (its length, 4 bytes
/// little-endian, then the PEM); `None` if the listener closed the connection instead.
pub async fn certificate_preamble(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    within("the certificate preamble", stream.read_exact(&mut len))
        .await
        .ok()?;
    let len = u32::from_le_bytes(len);
    assert!(len <= 64 * 1024, "a certificate preamble of {len} bytes");
    let mut pem = vec![0u8; len as usize];
    within("the certificate", stream.read_exact(&mut pem))
        .await
        .ok()?;
    Some(pem)
}

/// The locator of the tcp-tls node listening at `addr`, named by the certificate it
/// presents (as a dialler checks it).
pub async fn tcp_tls_locator(addr: SocketAddr) -> PeerLocator {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let pem = certificate_preamble(&mut stream)
        .await
        .unwrap_or_else(|| panic!("{addr} closed the connection before its certificate"));
    PeerLocator::new("tcp-tls", designator_of(&pem))
        .with_hint("host", addr.ip().to_string())
        .with_hint("port", addr.port().to_string())
}

/// Waits until the peer ends `stream` (everything it sent before is read and dropped).
pub async fn until_ended(stream: &mut (impl tokio::io::AsyncRead + Unpin)) {
    let mut sink = Vec::new();
    let _ = within(
        "the peer to end the connection",
        stream.read_to_end(&mut sink),
    )
    .await;
}

/// A finished TLS handshake with `boss`, and nothing said after it.
pub async fn silent_tls(boss: &PeerLocator) -> Stream {
    within("a tls handshake", TcpTls::dial_only().connect(boss))
        .await
        .unwrap()
}

/// Fails the test if `f` takes longer than [`HANG`].
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(HANG, f).await {
        Ok(t) => t,
        Err(_) => panic!("{what}: not within {HANG:?}"),
    }
}

/// A tcp-tls netlayer that names its node with another node's locator, so the node
/// claims that location in every session it opens; what it can prove is its own
/// certificate (or none).
struct Claiming {
    inner: TcpTls,
    claims: PeerLocator,
}

impl Netlayer for Claiming {
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

/// How long an impostor waits for the boss to answer its one question.
const IMPOSTOR_PATIENCE: Duration = Duration::from_secs(20);

/// A node that opens a session with `boss` claiming to be `claims` (signing its hello with
/// keys of its own, and presenting a certificate of its own when `own_certificate`, none
/// otherwise), and asks for an object there; answers what became of the question.
pub async fn claim_session(
    boss: &PeerLocator,
    claims: &PeerLocator,
    own_certificate: bool,
) -> String {
    let inner = if own_certificate {
        TcpTls::bind(
            "127.0.0.1:0".parse().unwrap(),
            &TlsIdentity::generate().unwrap(),
            None,
        )
        .await
        .unwrap()
    } else {
        TcpTls::dial_only()
    };
    let node = Node::start(
        vec![Arc::new(Claiming {
            inner,
            claims: claims.clone(),
        }) as Arc<dyn Netlayer>],
        SessionConfig::default(),
    )
    .unwrap();
    // Any swiss number: the session opens (or is refused) before it is looked up.
    let wanted = Sturdyref::parse(&format!(
        "ocapn://{}.tcp-tls/s/aW1wb3N0b3I?host={}&port={}",
        boss.designator,
        boss.hint("host").unwrap(),
        boss.hint("port").unwrap()
    ))
    .unwrap();
    let asked = node.with_core(move |c| c.enliven(&wanted)).await.unwrap();
    match tokio::time::timeout(IMPOSTOR_PATIENCE, node.settled(asked)).await {
        Ok(Ok(Ok(answer))) => format!("answered {answer:?}"),
        Ok(Ok(Err(problem))) => format!("broken: {problem:?}"),
        Ok(Err(stopped)) => format!("node stopped: {stopped}"),
        Err(_) => format!("no answer within {IMPOSTOR_PATIENCE:?}"),
    }
}
