//! Netlayers: the transports CapTP runs over. Each is a thin adapter that accepts and
//! opens byte streams; the node does the rest.

mod tcp_testing;
mod tcp_tls;
mod unix;

pub use tcp_testing::TcpTestingOnly;
pub use tcp_tls::{TcpTls, TlsIdentity, designator_of};
pub use unix::UnixSocket;

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::locator::PeerLocator;

/// A bidirectional byte stream.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// A boxed stream, as netlayers hand them to the node.
pub type Stream = Box<dyn AsyncStream>;

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A transport.
pub trait Netlayer: Send + Sync + 'static {
    /// The transport's name in locators (`tcp-testing-only`, `unix`, `tcp-tls`).
    fn transport(&self) -> &str;
    /// This node's locator on this netlayer.
    fn locator(&self) -> PeerLocator;
    /// Whether it listens (a netlayer may only dial).
    fn can_accept(&self) -> bool;
    /// The next incoming connection.
    fn accept(&self) -> BoxFuture<'_, std::io::Result<Stream>>;
    /// Opens a connection to `peer`.
    fn connect(&self, peer: &PeerLocator) -> BoxFuture<'static, std::io::Result<Stream>>;
}

pub(crate) fn random_designator() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

pub(crate) fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}
