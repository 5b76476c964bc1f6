//! `tcp-testing-only`: plain Syrup over TCP, the conformance suite's netlayer. No
//! encryption, no authentication: for tests on loopback only.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use super::{BoxFuture, Netlayer, Stream, invalid, random_designator};
use crate::locator::PeerLocator;

/// The `tcp-testing-only` netlayer.
#[derive(Debug)]
pub struct TcpTestingOnly {
    listener: Option<TcpListener>,
    locator: PeerLocator,
}

impl TcpTestingOnly {
    /// Listens on `addr` (port 0 = any free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpTestingOnly> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let locator = PeerLocator::new(crate::locator::TCP_TESTING_ONLY, random_designator()?)
            .with_hint("host", local.ip().to_string())
            .with_hint("port", local.port().to_string());
        Ok(TcpTestingOnly {
            listener: Some(listener),
            locator,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
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
        self.listener.is_some()
    }

    fn accept(&self) -> BoxFuture<'_, std::io::Result<Stream>> {
        Box::pin(async move {
            let listener = self
                .listener
                .as_ref()
                .ok_or_else(|| invalid("this tcp-testing-only netlayer does not listen".into()))?;
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as Stream)
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
