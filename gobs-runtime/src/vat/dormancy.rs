//! What a sleepy vat keeps: its strategy ([`Sleep`]), the portraits it wakes actors from,
//! and which actors it used lately. The vat's side of it is in [`sleep`](super::sleep).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use hashlink::LinkedHashMap;

use crate::entry::{ActorEntry, Restored};
use crate::error::Error;
use crate::id_hash::BuildIdHasher;
use crate::portrait::ActorId;
use crate::vat::kept::Kept;
use crate::vat::shared::VatShared;

/// Which saved actors a persistent vat keeps in memory between turns (Goblins' sleepy
/// actors). Chosen per vat, when it starts: see
/// [`Registry::set_sleep`](crate::Registry::set_sleep).
///
/// A sleeping actor is saved and dropped from memory; references to it stay live, and the
/// next message to it (a send, a near call from an actor of its vat, a call by name, a
/// pipelined message) restores it from its portrait first. With a strategy other than
/// `Never`, a restored vat also starts with its actors asleep, so that a vat of a million
/// actors costs the memory of the ones in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sleep {
    /// Every actor stays in memory (the default).
    #[default]
    Never,
    /// An actor sleeps as soon as the turn that used it has committed and saved it.
    Always,
    /// At most `awake` saved actors stay in memory; the least recently used sleep first.
    Lru {
        /// How many saved actors may stay awake between turns.
        awake: usize,
    },
}

/// Rebuilds a sleeping actor from its kept portrait (persistence implements it: it
/// knows the env and the registry that references in portraits are decoded with).
pub(crate) trait Revive {
    fn revive(
        &self,
        vat: &Arc<VatShared>,
        id: ActorId,
        entry: &'static ActorEntry,
        version: u32,
        args: &[u8],
    ) -> Result<Restored, Error>;
}

/// A sleepy vat's bookkeeping.
pub(crate) struct Dormancy {
    pub(super) strategy: Sleep,
    pub(super) revive: Rc<dyn Revive>,
    /// The portraits the store holds for the actors that may sleep, awake or asleep.
    pub(super) kept: Kept,
    /// Actors looked up since the last settling of sleep (between turns), in order.
    pub(super) used: Vec<ActorId>,
    /// Awake actors that may sleep, least recently used first (for `Lru`).
    pub(super) recent: LinkedHashMap<ActorId, (), BuildIdHasher>,
}

impl Dormancy {
    pub(crate) fn new(strategy: Sleep, revive: Rc<dyn Revive>) -> Dormancy {
        Dormancy {
            strategy,
            revive,
            kept: Kept::default(),
            used: Vec::new(),
            recent: LinkedHashMap::default(),
        }
    }
}

/// `RefCell` holding a sleepy vat's bookkeeping (`None`: the vat never sleeps).
pub(crate) type DormancyCell = RefCell<Option<Box<Dormancy>>>;
