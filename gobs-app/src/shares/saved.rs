//! What the shares' two actors keep: the [`ShareBook`] (the boss's grants, vat
//! [`SHARES_VAT`](super::book::SHARES_VAT)) and each [`Grant`]. They hold references to
//! each other, so their saved forms stand together here; what each does is in
//! [`super::book`] and [`super::grant`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use gobs_runtime::{Ref, Resolver, define_actor};
use serde::{Deserialize, Serialize};

use super::model::{Right, ShareUse};
use super::route::RouteCell;
use crate::model::Cancel;

/// The grants, by id, and the uses recorded (see the module docs).
#[define_actor(aliases = ["gobs_app::shares::book::ShareBook"])]
#[derive(Debug)]
pub struct ShareBook {
    pub(super) grants: BTreeMap<String, Ref<Grant>>,
    pub(super) uses: VecDeque<ShareUse>,
    pub(super) next_id: u64,
    /// Given by the process that serves the grants; none in one that only reads.
    #[actor(transient)]
    pub(super) route: RouteCell,
}

impl ShareBook {
    /// A book of no grants.
    pub fn empty() -> ShareBook {
        ShareBook {
            grants: BTreeMap::new(),
            uses: VecDeque::new(),
            next_id: 1,
            route: RouteCell::default(),
        }
    }
}

impl Default for ShareBook {
    fn default() -> Self {
        ShareBook::empty()
    }
}

/// A call in flight through a grant: how to cancel it, and its caller's answer (taken
/// by whichever comes first: the machine's answer or the revocation).
pub(super) struct Live {
    pub(super) cancel: Cancel,
    pub(super) answer: Arc<Mutex<Option<Resolver<String>>>>,
}

/// The calls in flight through a grant.
#[derive(Default)]
pub struct LiveCalls(pub(super) Mutex<Vec<Live>>);

impl std::fmt::Debug for LiveCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |l| l.len());
        write!(f, "LiveCalls({n})")
    }
}

/// What a grant was made for: fixed when it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// The machine it reaches.
    pub machine: String,
    /// What it allows there.
    pub rights: Vec<Right>,
    /// Its note.
    pub note: String,
    /// When it was made.
    pub created_at: u64,
    /// When it stops working, if it does by itself.
    pub expires_at: Option<u64>,
}

/// One machine's facet for whoever holds its URI (see the module docs).
#[define_actor(aliases = ["gobs_app::shares::grant::Grant"])]
#[derive(Debug)]
pub struct Grant {
    pub(super) id: String,
    pub(super) terms: Terms,
    pub(super) revoked_at: Option<u64>,
    pub(super) last_use: Option<u64>,
    pub(super) uses: u64,
    pub(super) book: Ref<ShareBook>,
    #[actor(transient)]
    pub(super) live: LiveCalls,
}
