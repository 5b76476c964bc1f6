//! Two bare CapTP sessions joined in memory, without nodes: for tests of the session
//! state machine itself (its events, its bytes).

use crate::captp::{ConnId, Dialect, Event, KeyPair, LocalRef, ObjId, Session, SessionConfig};
use crate::locator::PeerLocator;

/// The bootstrap object each session of a [`SessionPair`] names.
pub const BOOTSTRAP: LocalRef = LocalRef {
    id: ObjId(0),
    promise: false,
};

/// Sessions `a` (connection 1, peer "a") and `b` (connection 2, peer "b").
#[derive(Debug)]
pub struct SessionPair {
    /// One side.
    pub a: Session,
    /// The other side.
    pub b: Session,
}

impl SessionPair {
    /// Two sessions speaking `dialect`, their hellos queued and not yet exchanged.
    pub fn new(dialect: Dialect) -> SessionPair {
        SessionPair::with_config(SessionConfig {
            dialect,
            ..SessionConfig::default()
        })
    }

    /// Two sessions with `config`, their hellos queued and not yet exchanged.
    pub fn with_config(config: SessionConfig) -> SessionPair {
        let session = |conn, name: &str| {
            Session::new(
                ConnId(conn),
                config.clone(),
                KeyPair::generate().expect("no randomness for a test key"),
                &PeerLocator::new("test", name),
                BOOTSTRAP,
            )
        };
        SessionPair {
            a: session(1, "a"),
            b: session(2, "b"),
        }
    }

    /// Two sessions that have exchanged hellos (each saw exactly `Opened`).
    pub fn opened(dialect: Dialect) -> SessionPair {
        SessionPair::new(dialect).open()
    }

    /// [`SessionPair::with_config`], hellos exchanged.
    pub fn opened_with(config: SessionConfig) -> SessionPair {
        SessionPair::with_config(config).open()
    }

    fn open(mut self) -> SessionPair {
        let (ea, eb) = self.pump();
        assert!(matches!(ea.as_slice(), [Event::Opened { .. }]), "{ea:?}");
        assert!(matches!(eb.as_slice(), [Event::Opened { .. }]), "{eb:?}");
        self
    }

    /// Moves bytes both ways until both sides are quiet; the events of each side.
    pub fn pump(&mut self) -> (Vec<Event>, Vec<Event>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        loop {
            let (oa, ob) = (self.a.take_output(), self.b.take_output());
            if oa.is_empty() && ob.is_empty() {
                return (ea, eb);
            }
            self.b.receive(&oa);
            self.a.receive(&ob);
            ea.extend(std::iter::from_fn(|| self.a.poll_event()));
            eb.extend(std::iter::from_fn(|| self.b.poll_event()));
        }
    }
}
