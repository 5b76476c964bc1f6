//! How the boss sees each machine's session through its gateway: up since when, down
//! since when (a watcher looks every [`WATCH_PERIOD`]), waiting for its first
//! registration; and the calls it carries to a machine's bindings ([`Gateway::ask`]),
//! waiting a while for a session that is down to come back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use gobs_ocapn::captp::{CapRef, ConnId, Term};
use gobs_runtime::Promise;

use super::answers;
use super::gateway::{Gateway, Live, Reach, ReachChange, WATCH_PERIOD};

impl Gateway {
    /// How machine `machine`'s session stands; `None` for a machine the gateway does not
    /// know (not a network machine, or destroyed).
    pub fn reach(&self, machine: &str) -> Option<Reach> {
        self.lock_live().get(machine).map(|l| l.reach)
    }

    /// How many OCapN sessions the gateway's node holds open (hob-clients connected, whether
    /// they registered yet or not); 0 once the node stopped. Asked on the node's own task,
    /// so it can be awaited from any runtime.
    pub async fn sessions(&self) -> usize {
        self.inner
            .node
            .with_core(|core| core.session_stats().len())
            .await
            .unwrap_or(0)
    }

    /// Waits until machine `machine`'s hob-client registered (or attached), at most
    /// `limit`; `check` is asked every 100 ms whether to give up (the machine's process
    /// died, say) and its answer is the reason.
    pub fn wait_up(
        &self,
        machine: &str,
        limit: Duration,
        mut check: impl FnMut() -> Option<String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut live = self.lock_live();
        loop {
            match live.get(machine).map(|l| l.reach) {
                Some(Reach::Up(_)) => return Ok(()),
                None => return Err(format!("machine {machine:?} was revoked while waiting")),
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "machine {machine:?}'s hob-client did not register within {}",
                    humantime::format_duration(limit)
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            live = match self.inner.changed.wait_timeout(live, wait) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
            drop(live);
            if let Some(why) = check() {
                return Err(why);
            }
            live = self.lock_live();
        }
    }

    /// Sends `method ARGS` to machine `machine`'s bindings; waits at most `wait` for its
    /// session to come back if it is down (a restarted boss, the hob-client reconnecting).
    pub fn ask(&self, machine: &str, args: Vec<Term>, wait: Duration) -> Promise<Term> {
        let bindings = match self.bindings_within(machine, wait) {
            Ok(b) => b,
            Err(why) => return Promise::broken(gobs_runtime::Error::actor("machine", Failed(why))),
        };
        gobs_ocapn::vat::RemoteObject::new(self.inner.node.clone(), bindings).send_args(args)
    }

    /// Blocks until `promise` settles, at most `limit` (off the vats only); a failure's
    /// words are cut with [`answers::bounded_error`].
    pub fn wait<T: Send + 'static>(promise: Promise<T>, limit: Duration) -> Result<T, String> {
        match promise.wait_timeout(limit) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(answers::bounded_error(&crate::actors::reason::reason(&e))),
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(limit)
            )),
        }
    }

    fn bindings_within(&self, machine: &str, wait: Duration) -> Result<CapRef, String> {
        let deadline = Instant::now() + wait;
        let mut live = self.lock_live();
        loop {
            match live.get(machine) {
                None => {
                    return Err(format!(
                        "machine {machine:?} is not registered with this boss's hob gateway"
                    ));
                }
                Some(Live {
                    bindings: Some((r, _)),
                    ..
                }) => return Ok(r.clone()),
                Some(l) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(match l.reach {
                            Reach::Down(since) => format!(
                                "machine {machine:?} is unreachable: its hob-client's session \
                                 has been down since {}; it reconnects by itself once it can \
                                 (check that the machine runs)",
                                humantime::format_rfc3339_seconds(since)
                            ),
                            _ => format!("machine {machine:?}'s hob-client has not registered"),
                        });
                    }
                    live = match self.inner.changed.wait_timeout(live, deadline - now) {
                        Ok((guard, _)) => guard,
                        Err(p) => p.into_inner().0,
                    };
                }
            }
        }
    }

    pub(super) fn set_live(&self, machine: &str, reach: Reach, bindings: Option<(CapRef, ConnId)>) {
        let before = self
            .lock_live()
            .insert(machine.to_string(), Live { reach, bindings })
            .map(|l| l.reach);
        self.inner.changed.notify_all();
        match (before, reach) {
            (Some(Reach::Up(_)), Reach::Down(_)) => self.tell_reach(machine, ReachChange::Down),
            (Some(Reach::Down(_)), Reach::Up(_)) => self.tell_reach(machine, ReachChange::Up),
            _ => {}
        }
    }

    pub(super) fn forget_live(&self, machine: &str) {
        self.lock_live().remove(machine);
        self.lock_conflicts().remove(machine);
        self.inner.changed.notify_all();
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Live>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every [`WATCH_PERIOD`], marks down the machines whose session ended.
    pub(super) fn watch(&self) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.runtime.spawn(async move {
            loop {
                tokio::time::sleep(WATCH_PERIOD).await;
                let Some(inner) = weak.upgrade() else { return };
                let Ok(open) = inner
                    .node
                    .with_core(|core| {
                        core.session_stats()
                            .into_iter()
                            .map(|(c, ..)| c)
                            .collect::<Vec<_>>()
                    })
                    .await
                else {
                    return;
                };
                let mut live = inner.live.lock().unwrap_or_else(|p| p.into_inner());
                let mut down = Vec::new();
                for (machine, l) in live.iter_mut() {
                    if let Some((_, conn)) = &l.bindings
                        && !open.contains(conn)
                    {
                        tracing::warn!(machine, "machine's hob-client session is down");
                        l.bindings = None;
                        l.reach = Reach::Down(SystemTime::now());
                        down.push(machine.clone());
                    }
                }
                drop(live);
                if !down.is_empty() {
                    inner.changed.notify_all();
                }
                let g = Gateway { inner };
                for machine in down {
                    g.tell_reach(&machine, ReachChange::Down);
                }
            }
        });
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);
