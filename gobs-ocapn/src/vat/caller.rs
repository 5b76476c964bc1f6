//! Who calls an exported actor: the location the calling session *proved*, handed to each
//! method of an actor exported with [`ExportOptions::caller`](super::ExportOptions) as its
//! first argument. A capability is what a peer holds; a location is what a peer is. Most
//! methods need only the first. A method that must tell one peer from another (a
//! credential tied to a node's identity, say) needs the second, and must not take a
//! peer's word for it: a location a peer only claims in its `op:start-session` is signed
//! with a key of its own choosing.
//!
//! The peer cannot forge it: the exporter puts it in the arguments as a carried entry of
//! its own, which no data or reference a peer sends can become; and the peer does not send
//! it (a method `fn register(&mut self, caller: Caller, bindings: RemoteObject)` is called
//! as `register BINDINGS`).

use gobs_runtime::carry;
use serde::{Deserialize, Serialize};

use crate::captp::ConnId;
use crate::locator::PeerLocator;

/// The calling session's peer, as the node believes it (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    session: Option<ConnId>,
    location: Option<PeerLocator>,
}

impl Caller {
    pub(crate) fn new(session: Option<ConnId>, location: Option<PeerLocator>) -> Caller {
        Caller { session, location }
    }

    /// The session the call came in on; `None` for a call made on this node. A reference
    /// the caller passed as its own ([`RemoteObject::target`](super::RemoteObject::target))
    /// is an import of this session.
    pub fn session(&self) -> Option<ConnId> {
        self.session
    }

    /// The location the caller's session proved: a session this node dialed, or one whose
    /// netlayer proved it (over tcp-tls, the peer's certificate). `None` for a call made on
    /// this node, from a peer whose location is only claimed (a netlayer that proves
    /// nothing), or from a session that ended before the call ran.
    pub fn proven(&self) -> Option<&PeerLocator> {
        self.location.as_ref()
    }
}

/// Only inside a call by name (carrying): a caller is not data, and is never saved.
impl Serialize for Caller {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if carry::is_carrying() {
            return carry::serialize_foreign(self.clone(), s);
        }
        Err(serde::ser::Error::custom(
            "a Caller is given by the node to a call by name; it cannot be saved or sent",
        ))
    }
}

impl<'de> Deserialize<'de> for Caller {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Caller, D::Error> {
        if carry::is_carrying() {
            return carry::deserialize_foreign::<Caller, D>(d).map_err(|_| {
                serde::de::Error::custom(
                    "a Caller parameter comes first, and only from an export made with \
                     ExportOptions { caller: true, .. }",
                )
            });
        }
        Err(serde::de::Error::custom(
            "a Caller is given by the node to a call by name; it cannot be restored",
        ))
    }
}
