//! `unix`: CapTP over a unix-domain socket, for nodes on one host. The locator carries
//! the socket's path as the `path` hint.

use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use super::{Accepted, BoxFuture, Netlayer, Stream, invalid, random_designator};
use crate::locator::PeerLocator;

/// The unix-domain-socket netlayer.
#[derive(Debug)]
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    locator: PeerLocator,
}

impl UnixSocket {
    /// Listens at `path` (which must not exist yet).
    pub fn bind(path: &Path) -> std::io::Result<UnixSocket> {
        let listener = UnixListener::bind(path)?;
        let text = path
            .to_str()
            .ok_or_else(|| invalid(format!("socket path {} is not UTF-8", path.display())))?;
        let locator = PeerLocator::new("unix", random_designator()?).with_hint("path", text);
        Ok(UnixSocket {
            listener,
            path: path.to_owned(),
            locator,
        })
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Netlayer for UnixSocket {
    fn transport(&self) -> &str {
        "unix"
    }

    fn locator(&self) -> PeerLocator {
        self.locator.clone()
    }

    fn can_accept(&self) -> bool {
        true
    }

    fn accept(&self) -> BoxFuture<'_, std::io::Result<Accepted>> {
        Box::pin(async move {
            let (stream, _) = self.listener.accept().await?;
            Ok(Accepted::unauthenticated(
                Box::new(stream),
                self.transport(),
            ))
        })
    }

    /// Removes the socket's path: no peer finds it from then on.
    fn stop_accepting(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    fn connect(&self, peer: &PeerLocator) -> BoxFuture<'static, std::io::Result<Stream>> {
        let path = peer.hint("path").map(PathBuf::from);
        let uri = peer.to_uri();
        Box::pin(async move {
            let path =
                path.ok_or_else(|| invalid(format!("{uri}: a unix locator needs a path hint")))?;
            let stream = UnixStream::connect(&path).await?;
            Ok(Box::new(stream) as Stream)
        })
    }
}
