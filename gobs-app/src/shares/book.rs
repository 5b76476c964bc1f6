//! [`ShareBook`]: the boss's grants (vat [`SHARES_VAT`] of its registry), and the record
//! of their uses, bounded at [`MAX_USES`]. The process serving the grants gives it the
//! [`Route`] their calls go through ([`ShareBook::use_route`]): the same path the command
//! line's `run`, `put-file` and `get-file` take ([`crate::backend::route::MachineRoute`]).

use std::sync::Arc;

use gobs_runtime::{Promise, Ref, define_actor, self_ref, spawn, spawn_blocking};

use super::model::{Right, ShareInfo, ShareUse};
use super::route::Route;
use super::saved::{Grant, ShareBook, ShareBookCall, ShareBookSend};
use crate::model::{BackendError, Cancel, MachineInfo, MachineName};
use crate::ops::{MachineCall, Response};

/// The shares' vat in the boss's registry.
pub const SHARES_VAT: &str = "shares";

/// How many uses the book keeps: the oldest are dropped first.
pub const MAX_USES: usize = 1000;

impl ShareBook {
    /// Takes the route its grants' calls go through (given once, right after opening).
    pub fn use_route(&self, route: Arc<dyn Route>) {
        self.route.set(route);
    }

    fn route(&self) -> Result<Arc<dyn Route>, BackendError> {
        self.route.get().ok_or_else(|| {
            BackendError::internal(
                "this process does not serve shares; `gobs-app daemon` does, on the boss",
            )
        })
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
