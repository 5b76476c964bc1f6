//! [`SharesLink`]: the backend's side of sharing. It holds the [`ShareBook`] (restored if
//! the boss has one, made by the first `share`), gives it the route its grants' calls take
//! (in a process that serves: never in one that only reads), and publishes each new grant
//! on the boss's node, the one its host agents reach ([`FleetLink`]). Blocking: not to be
//! called from a vat's turn.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gobs_runtime::{Promise, Ref, Registry, spawn};

use super::book::SHARES_VAT;
use super::model::now;
use super::model::{Right, ShareAnswer, ShareInfo, ShareList, normalised};
use super::route::Route;
use super::saved::ShareBook;
use crate::config::human::HumanDuration;
use crate::hosts::link::FleetLink;
use crate::model::{BackendError, MachineName};

/// The backend's link to its grants (see the module docs).
pub struct SharesLink {
    registry: Registry,
    route: Option<Arc<dyn Route>>,
    book: Mutex<Option<Ref<ShareBook>>>,
    answer: Duration,
}

impl std::fmt::Debug for SharesLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharesLink(serving: {})", self.route.is_some())
    }
}

impl SharesLink {
    /// The link of the boss kept in `registry`: its book is restored if it has one, and
    /// given `route` (`None`: a process that only reads, which serves no grant).
    pub fn open(
        registry: &Registry,
        route: Option<Arc<dyn Route>>,
        answer: Duration,
    ) -> Result<SharesLink, BackendError> {
        let link = SharesLink {
            registry: registry.clone(),
            route,
            book: Mutex::new(None),
            answer,
        };
        if registry.vat_names().iter().any(|n| n == SHARES_VAT) {
            link.book()?;
        }
        Ok(link)
    }

    /// The book, opened (made, if the boss has none yet) and given the route.
    fn book(&self) -> Result<Ref<ShareBook>, BackendError> {
        let mut kept = self.book.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(book) = &*kept {
            return Ok(book.clone());
        }
        let (_, book) = self
            .registry
            .start_vat(SHARES_VAT, || spawn(ShareBook::empty()))
            .map_err(|e| BackendError::storage(format!("cannot open the shares' vat: {e}")))?;
        if let Some(route) = self.route.clone() {
            wait(
                book.send_with(move |b| b.use_route(route)),
                self.answer,
                "the shares",
            )?;
        }
        *kept = Some(book.clone());
        Ok(book)
    }

    /// `gobs-app share`: a grant of `rights` on machine `name` (which `exists` must know),
    /// published on `fleet`'s node: its row and URI.
    pub fn share(
        &self,
        fleet: &FleetLink,
        name: &MachineName,
        allow: Vec<Right>,
        expires: Option<HumanDuration>,
        note: Option<String>,
    ) -> Result<ShareAnswer, BackendError> {
        let rights = normalised(allow);
        if rights.is_empty() {
            return Err(BackendError::invalid(
                "a share must allow something: --allow run,get-file,put-file,status (any of \
                 them)",
            ));
        }
        let note = note.unwrap_or_default();
        if note.len() > MAX_NOTE || note.chars().any(char::is_control) {
            return Err(BackendError::invalid(format!(
                "a share's note is one line of at most {MAX_NOTE} bytes"
            )));
        }
        let route = self.route.clone().ok_or_else(|| {
            BackendError::internal("a command that only reads cannot share machines")
        })?;
        // Refused here, with the usual words, if there is no such machine.
        route.machine(name)?;
        let expires_at = match expires {
            Some(d) if d.0.is_zero() => {
                return Err(BackendError::invalid(
                    "--expires 0 would make a share that never works; give a duration such \
                     as \"8h\", or leave it out for a share that lasts until revoked",
                ));
            }
            Some(d) => Some(now().saturating_add(d.0.as_secs().max(1))),
            None => None,
        };
        let book = self.book()?;
        let (share, grant) = wait(
            book.send().add(name.to_string(), rights, note, expires_at),
            self.answer,
            "the shares",
        )?;
        let published = fleet.publish_as(&format!("share/{}", share.id), &grant, "share");
        match published {
            Ok(uri) => Ok(ShareAnswer { share, uri }),
            Err(e) => {
                // Never handed out: refused from now on.
                let _ = wait(
                    book.send().revoke(share.id.clone()),
                    self.answer,
                    "the shares",
                );
                Err(e)
            }
        }
    }

    /// `gobs-app shares`: every grant, and with `log` the recorded uses.
    pub fn shares(&self, log: bool) -> Result<ShareList, BackendError> {
        let Some(book) = self.existing()? else {
            return Ok(ShareList {
                grants: Vec::new(),
                uses: log.then(Vec::new),
            });
        };
        let grants = wait(book.send().list(), self.answer, "the shares")?;
        let uses = match log {
            true => Some(wait(book.send().uses(), self.answer, "the shares")?),
            false => None,
        };
        Ok(ShareList { grants, uses })
    }

    /// `gobs-app revoke ID`.
    pub fn revoke(&self, id: &str) -> Result<ShareInfo, BackendError> {
        let book = self.existing()?.ok_or_else(|| {
            BackendError::new(
                crate::model::ErrorKind::NotFound,
                format!("no share with id {id:?}: no shares were made"),
            )
        })?;
        wait(
            book.send().revoke(id.to_string()),
            self.answer,
            "the shares",
        )
    }

    /// Revokes the grants of machine `name`, which is being destroyed.
    pub fn revoke_machine(&self, name: &str) -> Result<(), BackendError> {
        let Some(book) = self.existing()? else {
            return Ok(());
        };
        let revoked = wait(
            book.send().revoke_machine(name.to_string()),
            self.answer,
            "the shares",
        )?;
        if !revoked.is_empty() {
            tracing::info!(machine = name, shares = ?revoked, "revoked the shares of a destroyed machine");
        }
        Ok(())
    }

    /// The book, if the boss has one.
    fn existing(&self) -> Result<Option<Ref<ShareBook>>, BackendError> {
        if self.registry.vat_names().iter().any(|n| n == SHARES_VAT) {
            return self.book().map(Some);
        }
        Ok(None)
    }
}

/// The longest note a share takes.
pub const MAX_NOTE: usize = 200;

fn wait<T: Send + 'static>(
    promise: Promise<T>,
    limit: Duration,
    whom: &str,
) -> Result<T, BackendError> {
    match promise.wait_timeout(limit) {
        Ok(answer) => Ok(answer.map_err(BackendError::from)?),
        Err(_) => Err(BackendError::internal(format!(
            "{whom} did not answer within {}; the boss may be overloaded or stuck",
            humantime::format_duration(limit)
        ))),
    }
}
