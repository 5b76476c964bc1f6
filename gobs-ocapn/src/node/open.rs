//! [`Node::open`]: a node whose identity, port and published names live in the
//! application's persistence registry, so its sturdyrefs stay the same across restarts.

use std::net::SocketAddr;
use std::sync::Arc;

use gobs_runtime::Registry;

use super::{Node, NodeError};
use crate::captp::SessionConfig;
use crate::netlayer::{Netlayer, TcpTls};
use crate::persist::NodeStore;

/// A node opened from a registry, not listening yet: [`NodeBuilder::listen_tls`] starts it.
#[derive(Debug)]
#[must_use = "a node does nothing until it listens: call .listen_tls(addr).await"]
pub struct NodeBuilder {
    store: NodeStore,
    registry: Registry,
    public_host: Option<String>,
    config: SessionConfig,
}

impl Node {
    /// Opens the node kept in `registry` (the vat [`NODE_VAT`](crate::persist::NODE_VAT)),
    /// or makes it on first open with a fresh identity. Far references restored from the
    /// registry's portraits reach the network through this node once it listens. The
    /// registry's env must extend [`crate::persist::env()`] (an error says so otherwise).
    /// Blocks until the node's vat is up, as [`Registry::start_vat`] does.
    pub fn open(registry: &Registry) -> Result<NodeBuilder, NodeError> {
        Ok(NodeBuilder {
            store: NodeStore::open(registry, None)?,
            registry: registry.clone(),
            public_host: None,
            config: SessionConfig::default(),
        })
    }
}

impl NodeBuilder {
    /// The host peers dial, written into the node's sturdyrefs (by default the IP it
    /// listens on: set this when listening on `0.0.0.0` or behind a NAT).
    pub fn public_host(mut self, host: impl Into<String>) -> NodeBuilder {
        self.public_host = Some(host.into());
        self
    }

    /// The CapTP session limits and timeouts (the defaults otherwise).
    pub fn session_config(mut self, config: SessionConfig) -> NodeBuilder {
        self.config = config;
        self
    }

    /// Listens on tcp-tls at `addr` and starts the node; runs inside a tokio runtime.
    ///
    /// The port: an explicit one (`"0.0.0.0:7000"`) wins and is kept; port 0 means the
    /// kept one, or on the first run any free port, which is then kept — the port is in
    /// every sturdyref the node hands out, so it stays the same across restarts. A kept
    /// port that is taken is an error naming it, not a silent move to another one.
    pub async fn listen_tls(self, addr: &str) -> Result<Node, NodeError> {
        let asked = resolve(addr).await?;
        let kept = self.store.port().await?;
        let at = match (asked.port(), kept) {
            (0, Some(port)) => SocketAddr::new(asked.ip(), port),
            _ => asked,
        };
        let identity = self.store.tls_awaited().await?;
        let tls = TcpTls::bind(at, &identity, self.public_host.as_deref())
            .await
            .map_err(|source| match kept {
                Some(port)
                    if asked.port() == 0 && source.kind() == std::io::ErrorKind::AddrInUse =>
                {
                    NodeError::PortTaken {
                        port,
                        ip: at.ip(),
                        store: self.registry.store_name().to_owned(),
                        source,
                    }
                }
                _ => NodeError::Listen { addr: at, source },
            })?;
        let port = tls.local_addr().map_or(at.port(), |a| a.port());
        if kept != Some(port) {
            self.store.keep_port(port).await?;
        }
        let mut node = Node::start(vec![Arc::new(tls) as Arc<dyn Netlayer>], self.config)
            .map_err(|source| NodeError::Listen { addr: at, source })?;
        self.store.attach(&node).await?;
        node.attach_to(&self.registry);
        node.store = Some(self.store);
        Ok(node)
    }
}

/// `addr` as a socket address (a name is looked up; its first address is taken).
async fn resolve(addr: &str) -> Result<SocketAddr, NodeError> {
    let bad = |why: String| NodeError::BadAddress {
        addr: addr.to_owned(),
        why,
    };
    let mut found = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| bad(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| bad("it names no address".into()))
}
