//! [`ShareBook`]: the boss's grants (vat [`SHARES_VAT`] of its registry), and the record
//! of their uses, bounded at [`MAX_USES`]. The process serving the grants gives it the
//! [`Route`] their calls go through ([`ShareBook::use_route`]): the same path the command
//! line's `run`, `put-file` and `get-file` take ([`crate::backend::route::MachineRoute`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};

use gobs_runtime::{Promise, Ref, define_actor, self_ref, spawn, spawn_blocking};

use super::grant::Grant;
use super::model::{Right, ShareInfo, ShareUse};
use crate::hosts::model::now_unix;
use crate::model::{BackendError, Cancel, MachineInfo, MachineName};
use crate::ops::{MachineCall, Response};

/// The shares' vat in the boss's registry.
pub const SHARES_VAT: &str = "shares";

/// How many uses the book keeps: the oldest are dropped first.
pub const MAX_USES: usize = 1000;

/// How a grant's calls reach its machine: blocking (it runs on a thread of its own, off
/// the vat).
pub trait Route: Send + Sync {
    /// Has the machine `call` names do it (what `Backend::on_machine` does).
    fn on_machine(
        &self,
        cancel: &Cancel,
        call: Arc<dyn MachineCall>,
    ) -> Result<Response, BackendError>;
    /// Machine `name`'s record (what `Backend::machine` does).
    fn machine(&self, name: &MachineName) -> Result<MachineInfo, BackendError>;
}

/// The route a book was given, if any.
#[derive(Default, Clone)]
pub struct RouteCell(Arc<OnceLock<Arc<dyn Route>>>);

impl std::fmt::Debug for RouteCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let given = self.0.get().is_some();
        write!(f, "RouteCell(given: {given})")
    }
}

/// The grants, by id, and the uses recorded (see the module docs).
#[define_actor]
#[derive(Debug)]
pub struct ShareBook {
    grants: BTreeMap<String, Ref<Grant>>,
    uses: VecDeque<ShareUse>,
    next_id: u64,
    /// Given by the process that serves the grants; none in one that only reads.
    #[actor(transient)]
    route: RouteCell,
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

    /// Takes the route its grants' calls go through (given once, right after opening).
    pub fn use_route(&self, route: Arc<dyn Route>) {
        let _ = self.route.0.set(route);
    }

    fn route(&self) -> Result<Arc<dyn Route>, BackendError> {
        self.route.0.get().cloned().ok_or_else(|| {
            BackendError::internal(
                "this process does not serve shares; `gobs-app daemon` does, on the boss",
            )
        })
    }
}

impl Default for ShareBook {
    fn default() -> Self {
        ShareBook::empty()
    }
}

#[define_actor]
impl ShareBook {
    /// Makes a grant of `rights` on machine `machine`: answers its row and the grant, which
    /// the caller publishes.
    #[actor(local)]
    pub fn add(
        &mut self,
        machine: String,
        rights: Vec<Right>,
        note: String,
        expires_at: Option<u64>,
    ) -> Result<(ShareInfo, Ref<Grant>), BackendError> {
        let book = self_ref::<ShareBook>()
            .ok_or_else(|| BackendError::internal("a share book method ran outside the book"))?;
        let id = format!("s{}", self.next_id);
        self.next_id += 1;
        let grant = Grant::made(id.clone(), machine, rights, note, expires_at, book);
        let info = grant.info();
        let grant = spawn(grant);
        self.grants.insert(id, grant.clone());
        Ok((info, grant))
    }

    /// Every grant's row, by id.
    #[actor(local)]
    pub fn list(&self) -> Result<Vec<ShareInfo>, BackendError> {
        let mut rows = Vec::new();
        for grant in self.grants.values() {
            rows.push(grant.call().info()?);
        }
        rows.sort_by_key(|r| (r.created_at, r.id.len(), r.id.clone()));
        Ok(rows)
    }

    /// The recorded uses, oldest first.
    #[actor(local)]
    pub fn uses(&self) -> Vec<ShareUse> {
        self.uses.iter().cloned().collect()
    }

    /// Revokes grant `id` at once (calls in flight through it end, refused): answers its
    /// row.
    #[actor(local)]
    pub fn revoke(&mut self, id: String) -> Result<ShareInfo, BackendError> {
        let Some(grant) = self.grants.get(&id) else {
            let known: Vec<&str> = self.grants.keys().map(String::as_str).collect();
            let known = match known.is_empty() {
                true => "no shares were made".to_string(),
                false => format!("shares: {}", known.join(", ")),
            };
            return Err(BackendError::new(
                crate::model::ErrorKind::NotFound,
                format!("no share with id {id:?} ({known}); `gobs-app shares` lists them"),
            ));
        };
        Ok(grant.call().revoke()?)
    }

    /// Revokes every grant of machine `machine` (it is being destroyed: a later machine
    /// of the same name is another machine): answers their ids.
    #[actor(local)]
    pub fn revoke_machine(&mut self, machine: String) -> Result<Vec<String>, BackendError> {
        let mut revoked = Vec::new();
        for (id, grant) in &self.grants {
            let info = grant.call().info()?;
            if info.machine == machine && info.revoked_at.is_none() {
                grant.call().revoke()?;
                revoked.push(id.clone());
            }
        }
        Ok(revoked)
    }

    /// Notes a use (called by the grant, in the turn of the use).
    #[actor(local)]
    pub fn note_use(&mut self, used: ShareUse) {
        if self.uses.len() >= MAX_USES {
            self.uses.pop_front();
        }
        self.uses.push_back(used);
    }

    /// Has the machine `call` names do it, off the vat, through the route.
    #[actor(local)]
    pub fn forward(
        &self,
        call: Arc<dyn MachineCall>,
        cancel: Cancel,
    ) -> Result<Promise<Result<Response, BackendError>>, BackendError> {
        let route = self.route()?;
        Ok(spawn_blocking(move || route.on_machine(&cancel, call)))
    }

    /// Machine `name`'s record, off the vat, through the route.
    #[actor(local)]
    pub fn machine(
        &self,
        name: MachineName,
    ) -> Result<Promise<Result<MachineInfo, BackendError>>, BackendError> {
        let route = self.route()?;
        Ok(spawn_blocking(move || route.machine(&name)))
    }
}

/// Now, for the grants (seconds since the Unix epoch).
pub(super) fn now() -> u64 {
    now_unix()
}
