//! [`NodeError`]: why opening, listening, publishing or enlivening through a node failed.

use crate::persist::PersistError;

use super::NodeStopped;

/// Why a node could not open, listen, publish or enliven.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node's state in the registry could not be read or saved.
    #[error(transparent)]
    Store(#[from] PersistError),
    /// The address to listen on is not one.
    #[error(
        "{addr:?} is not an address to listen on ({why}); write it as `127.0.0.1:0` or `[::1]:7000`"
    )]
    BadAddress {
        /// What was given.
        addr: String,
        /// Why it is not an address.
        why: String,
    },
    /// The port kept from an earlier run is taken.
    #[error(
        "port {port} is taken ({source}): this node has listened on it since its first run (kept in the registry {store}), and every sturdyref it handed out names it; stop whatever holds it (another run of this program?), or give an address with another port, e.g. `listen_tls(\"{ip}:7000\")` (sturdyrefs handed out before then will not reach the node)"
    )]
    PortTaken {
        /// The kept port.
        port: u16,
        /// The IP the node tried to listen on.
        ip: std::net::IpAddr,
        /// The registry's store.
        store: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Listening failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The name is published to another actor.
    #[error(
        "the name {name:?} is already published to another actor on this node; unpublish it first (`node.unpublish({name:?})`), or publish this actor under another name"
    )]
    NameTaken {
        /// The name.
        name: String,
    },
    /// Only this process's actors are published: a far reference is another node's.
    #[error(
        "cannot publish {actor} as {name:?}: it is a far reference, an actor of another node; publish actors of this process, and hand out the other node's sturdyref for that one"
    )]
    NotHere {
        /// The name.
        name: String,
        /// The far reference, as it describes itself.
        actor: String,
    },
    /// Publishing needs a node opened from a registry.
    #[error(
        "this node keeps no names: publishing needs a node opened from a registry (`Node::open(&registry)?.listen_tls(..)`)"
    )]
    NoStore,
    /// The URI is not a sturdyref.
    #[error(
        "{uri:?} is not a sturdyref URI (ocapn://<designator>.<transport>/s/<swiss>?…): {source}"
    )]
    BadUri {
        /// What was given.
        uri: String,
        /// Why it does not parse.
        source: crate::locator::LocatorError,
    },
    /// Enlivening the sturdyref failed (the peer is unreachable, refused it, or it names
    /// another type of actor).
    #[error(transparent)]
    Enliven(#[from] gobs_runtime::Error),
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] NodeStopped),
}
