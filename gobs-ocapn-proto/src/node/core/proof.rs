//! What a connection's netlayer proved about its peer, and so which location claims the
//! node believes. A peer names itself in `op:start-session` with a location it signs with
//! a key of its own choosing: that proves nothing about the location. Only the netlayer
//! can prove one (tcp-tls: the peer's client certificate hashes to the designator), and
//! only a believed claim may replace, refuse or be reused for another session with that
//! location (the rules are in `events.rs`, where a session opens).

use crate::locator::PeerLocator;

/// What the netlayer of an accepted connection proved about the peer at its other end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerProof {
    /// Nothing can be proved on this transport (`tcp-testing-only`, `unix`): a claim to a
    /// location on `transport` is all there is to go by, and is believed. `None` believes
    /// a claim on any transport (a host that does not say, such as an in-memory test net).
    Unauthenticated {
        /// The transport the connection came over.
        transport: Option<String>,
    },
    /// The peer proved it holds the location with this transport and designator.
    Proved {
        /// The transport the proof is for.
        transport: String,
        /// The designator the peer proved.
        designator: String,
    },
    /// The transport could have proved a location and this peer proved none (tcp-tls
    /// without a client certificate): no claim of it is believed.
    Unproved,
}

impl PeerProof {
    /// Whether a peer that proved this may be believed when it claims `location`.
    pub fn backs(&self, location: &PeerLocator) -> bool {
        match self {
            PeerProof::Unauthenticated { transport } => {
                transport.as_deref().is_none_or(|t| t == location.transport)
            }
            PeerProof::Proved {
                transport,
                designator,
            } => *transport == location.transport && *designator == location.designator,
            PeerProof::Unproved => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_believed_only_as_far_as_the_proof_goes() {
        let tls = PeerLocator::new("tcp-tls", "abc");
        let other = PeerLocator::new("tcp-tls", "xyz");
        let proved = PeerProof::Proved {
            transport: "tcp-tls".into(),
            designator: "abc".into(),
        };
        assert!(proved.backs(&tls));
        assert!(!proved.backs(&other), "another designator");
        assert!(!PeerProof::Unproved.backs(&tls));
        let testing = PeerProof::Unauthenticated {
            transport: Some("tcp-testing-only".into()),
        };
        assert!(testing.backs(&PeerLocator::new("tcp-testing-only", "abc")));
        assert!(
            !testing.backs(&tls),
            "an unauthenticated transport vouches for no tcp-tls location"
        );
        assert!(PeerProof::Unauthenticated { transport: None }.backs(&tls));
    }
}
