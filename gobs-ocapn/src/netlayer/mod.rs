//! Netlayers: the transports CapTP runs over. Each is a thin adapter that accepts and
//! opens byte streams; the node does the rest.
//!
//! # Facing strangers
//!
//! A listening node takes connections from anyone who reaches its address, so:
//!
//! - A TCP netlayer bounds the connections one source address holds, handshakes under way
//!   included ([`ListenConfig::per_source`], [`DEFAULT_PER_SOURCE`]), and the time its own
//!   handshake may take; the excess is closed as soon as it is accepted.
//! - A failing accept (the process out of file descriptors, most often) is retried after a
//!   wait that doubles up to a second, with one warning per run of failures that names
//!   `RLIMIT_NOFILE` and how to raise it, and one line when accepting works again.
//! - Every accepted connection comes with a [`PeerProof`]: what the netlayer proved about
//!   the peer. tcp-tls proves a location when the client's certificate hashes to its
//!   designator; the node never lets a session that only claims a location replace, refuse
//!   or stand in for one that proved it.
//! - The node aborts a session whose peer does not say hello in time
//!   ([`SessionConfig::hello_timeout`](crate::captp::SessionConfig::hello_timeout)),
//!   closes a session in which neither side holds anything and the peer stays silent
//!   ([`SessionConfig::idle_timeout`](crate::captp::SessionConfig::idle_timeout)), and
//!   closes an aborted session's socket within half a second, whatever the peer does.

mod listen;
mod tcp_testing;
mod tcp_tls;
mod tls_verify;
mod unix;

pub(crate) use listen::{AcceptBackoff, SourcePermit, TcpAcceptor};
pub use listen::{DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_PER_SOURCE, ListenConfig};
pub use tcp_testing::TcpTestingOnly;
pub use tcp_tls::{TcpTls, TlsIdentity, designator_of};
pub use unix::UnixSocket;

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::locator::PeerLocator;
use crate::node::PeerProof;

/// A bidirectional byte stream.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// A boxed stream, as netlayers hand them to the node.
pub type Stream = Box<dyn AsyncStream>;

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A connection a netlayer accepted.
#[derive(Debug)]
pub struct Accepted {
    /// Its byte stream.
    pub stream: Stream,
    /// What the netlayer proved about the peer (which location claims to believe).
    pub proof: PeerProof,
    /// What counts it against its source address; held as long as the connection is.
    hold: Option<SourcePermit>,
}

impl std::fmt::Debug for dyn AsyncStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

impl Accepted {
    /// A connection to hand to the node.
    pub fn new(stream: Stream, proof: PeerProof) -> Accepted {
        Accepted {
            stream,
            proof,
            hold: None,
        }
    }

    /// A connection over `transport`, which authenticates no one.
    pub fn unauthenticated(stream: Stream, transport: &str) -> Accepted {
        Accepted::new(
            stream,
            PeerProof::Unauthenticated {
                transport: Some(transport.to_owned()),
            },
        )
    }

    /// Counts the connection against its source until it ends.
    pub(crate) fn holding(mut self, permit: SourcePermit) -> Accepted {
        self.hold = Some(permit);
        self
    }

    /// Its stream, its proof, and what must be held as long as the stream is.
    pub(crate) fn into_parts(self) -> (Stream, PeerProof, Option<SourcePermit>) {
        (self.stream, self.proof, self.hold)
    }
}

/// A transport.
pub trait Netlayer: Send + Sync + 'static {
    /// The transport's name in locators (`tcp-testing-only`, `unix`, `tcp-tls`).
    fn transport(&self) -> &str;
    /// This node's locator on this netlayer.
    fn locator(&self) -> PeerLocator;
    /// Whether it listens (a netlayer may only dial).
    fn can_accept(&self) -> bool;
    /// The next incoming connection. After an error the node tries again, waiting longer
    /// while errors repeat.
    fn accept(&self) -> BoxFuture<'_, std::io::Result<Accepted>>;
    /// Opens a connection to `peer`.
    fn connect(&self, peer: &PeerLocator) -> BoxFuture<'static, std::io::Result<Stream>>;
    /// Stops listening for good, closing the connections accepted but not yet taken by
    /// [`Netlayer::accept`], which answers an error from then on. A node calls it when it
    /// halts, so a stopped node holds no door open and no peer waits on it. Dialling
    /// still works. The default does nothing: for a netlayer whose unaccepted connections
    /// wait only in the kernel's backlog.
    fn stop_accepting(&self) {}
}

pub(crate) fn random_designator() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

pub(crate) fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}
