//! `tcp-testing-only`: plain Syrup over TCP, the conformance suite's netlayer. No
//! encryption, no authentication: for tests on loopback only.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use super::{
    Accepted, BoxFuture, ListenConfig, Netlayer, Stream, TcpAcceptor, invalid, random_designator,
};
use crate::locator::PeerLocator;

/// The `tcp-testing-only` netlayer.
#[derive(Debug)]
pub struct TcpTestingOnly {
    acceptor: Mutex<TcpAcceptor>,
    local: SocketAddr,
    locator: PeerLocator,
}

impl TcpTestingOnly {
    /// Listens on `addr` (port 0 = any free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpTestingOnly> {
        TcpTestingOnly::bind_with(addr, ListenConfig::default()).await
    }

    /// Listens on `addr` with `config`'s bounds (its handshake timeout does not apply:
    /// this netlayer has no handshake of its own).
    pub async fn bind_with(
        addr: SocketAddr,
        config: ListenConfig,
    ) -> std::io::Result<TcpTestingOnly> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let locator = PeerLocator::new(crate::locator::TCP_TESTING_ONLY, random_designator()?)
            .with_hint("host", local.ip().to_string())
            .with_hint("port", local.port().to_string());
        Ok(TcpTestingOnly {
            acceptor: Mutex::new(TcpAcceptor::new(
                listener,
                crate::locator::TCP_TESTING_ONLY,
                config.per_source,
            )),
            local,
            locator,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        Some(self.local)
    }
}

impl Netlayer for TcpTestingOnly {
    fn transport(&self) -> &str {
        "tcp-testing-only"
    }

    fn locator(&self) -> PeerLocator {
        self.locator.clone()
    }

    fn can_accept(&self) -> bool {
        true
    }

    fn accept(&self) -> BoxFuture<'_, std::io::Result<Accepted>> {
        Box::pin(async move {
            let (stream, _, permit) = self.acceptor.lock().await.next().await;
            stream.set_nodelay(true)?;
            Ok(Accepted::unauthenticated(Box::new(stream), self.transport()).holding(permit))
        })
    }

    fn connect(&self, peer: &PeerLocator) -> BoxFuture<'static, std::io::Result<Stream>> {
        let host = peer.hint("host").map(str::to_owned);
        let port = peer.hint("port").and_then(|p| p.parse::<u16>().ok());
        let uri = peer.to_uri();
        Box::pin(async move {
            let (Some(host), Some(port)) = (host, port) else {
                return Err(invalid(format!(
                    "{uri}: a tcp-testing-only locator needs host and port hints"
                )));
            };
            let stream = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                TcpStream::connect((host.as_str(), port)),
            )
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{uri}: connect timed out"),
                )
            })??;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Stream)
        })
    }
}
