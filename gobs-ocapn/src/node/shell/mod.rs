//! The node's shell: the [`Core`] behind a lock that whichever thread has work for it
//! takes — a caller sending a message, a connection's reader with the bytes it read, the
//! vat thread with an actor's answer — so a message crosses no thread on its way in or
//! out. Writes go straight to the socket (see [`conn`]); a thread that finds the core
//! busy leaves its work queued for the thread that holds it, and goes on.
//!
//! The lock is never held across an await, and what runs under it never blocks (socket
//! writes that would block wait for the connection's writer task instead).

mod conn;
mod halt;
mod host;
mod inline;

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};

use tokio::runtime::Handle;
use tokio::sync::{Notify, oneshot};

use super::{ActorTable, Core, driver};
use crate::captp::{ConnId, LocalRef, SessionConfig, Term};
use crate::locator::PeerLocator;
use crate::netlayer::{AcceptBackoff, Netlayer};
use halt::RuntimeWatch;
use host::Host;
pub(crate) use inline::run_inline;

type CoreFn = Box<dyn FnOnce(&mut Core) + Send>;

/// A running node. Cloning gives another handle to the same node; the node runs until
/// its last handle is dropped.
///
/// Its tasks run on the tokio runtime it was started in. On a current-thread runtime that
/// is the thread that started it, so `.await` far answers there: a blocking
/// `Promise::wait` would stop the node and fails instead (the rule:
/// [blocking or async](gobs_runtime::Promise#blocking-or-async-one-rule)).
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
    /// Shared: a node handle is cloned into every far message's closures.
    locator: Arc<PeerLocator>,
    /// The gobs actors the node exports (touched with the core's lock held, so this lock
    /// is never contended).
    actors: Arc<Mutex<ActorTable>>,
    /// Where it keeps its port and published names, if opened from a registry.
    pub(super) store: Option<crate::persist::NodeStore>,
}

/// A node handle that does not keep the node running: what the node's own objects hold,
/// so that a node whose every outside handle is gone stops (and frees its port) even
/// while it exports actors.
#[derive(Clone)]
pub(crate) struct WeakNode {
    shared: std::sync::Weak<Shared>,
    locator: Arc<PeerLocator>,
    actors: Arc<Mutex<ActorTable>>,
    store: Option<crate::persist::NodeStore>,
}

impl WeakNode {
    /// The node, while it runs.
    pub(crate) fn upgrade(&self) -> Option<Node> {
        Some(Node {
            shared: self.shared.upgrade()?,
            locator: self.locator.clone(),
            actors: self.actors.clone(),
            store: self.store.clone(),
        })
    }

    /// Its table of exported actors.
    pub(crate) fn actors(&self) -> MutexGuard<'_, ActorTable> {
        self.actors.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.locator.to_uri())
    }
}

/// The node has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the OCapN node has stopped")]
pub struct NodeStopped;

/// The node's state and the queue of work waiting for it.
struct Shared {
    host: Mutex<Host>,
    /// Work left by threads that found the core busy; whoever holds the lock runs it
    /// before letting go.
    queue: Mutex<VecDeque<CoreFn>>,
    /// Something run on the core panicked: the node has stopped.
    stopped: AtomicBool,
    /// Its owner asked it to stop ([`Node::stop`]): the section under way halts it.
    stop_asked: AtomicBool,
    runtime: Handle,
    netlayers: Vec<Arc<dyn Netlayer>>,
    /// Wakes the timer task for an earlier deadline (or to end).
    timer: Arc<Notify>,
    /// Work waits in `queue` that no section was run for ([`Shared::post_later`]): the
    /// timer task runs one within [`LATER_WITHIN`] unless another comes first.
    later: AtomicBool,
}

/// The longest work queued by [`Shared::post_later`] waits for a section.
const LATER_WITHIN: std::time::Duration = std::time::Duration::from_millis(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The queue is only pushed to and drained: a poisoned lock is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Runs `f` on the host now, waiting for the lock: for the node's own tasks, never
    /// from inside the core.
    fn with_host(self: &Arc<Self>, f: impl FnOnce(&mut Host, &Arc<Shared>)) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        match self.host.lock() {
            Ok(mut host) => self.section(&mut host, f),
            Err(_) => return self.halt(halt::CORE_PANICKED),
        }
        self.run_queued();
    }

    /// Queues `f` for the core and runs it (and whatever else waits) now unless another
    /// thread holds the core, which then runs it; from any thread, inside the core too.
    fn post(self: &Arc<Self>, f: CoreFn) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        lock(&self.queue).push_back(f);
        self.run_queued();
    }

    /// Queues `f` for the core's next section, whichever thread runs it, without running
    /// one now: for work nothing waits for (letting go of an answer), which then costs no
    /// section of its own. Only the first such work wakes the timer task, which runs a
    /// section within [`LATER_WITHIN`] if nothing else does.
    fn post_later(&self, f: CoreFn) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        lock(&self.queue).push_back(f);
        if !self.later.swap(true, Ordering::AcqRel) {
            self.wake_timer();
        }
    }

    /// Runs queued work unless another thread holds the core; called after letting go of
    /// it, so that nothing queued meanwhile is left behind.
    fn run_queued(self: &Arc<Self>) {
        while !lock(&self.queue).is_empty() {
            match self.host.try_lock() {
                Ok(mut host) => self.section(&mut host, |_, _| {}),
                // The holder runs the queue before it lets go, then looks again.
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(_)) => return self.halt(halt::CORE_PANICKED),
            }
        }
    }

    /// With the core held: the queued work, `f`, what they queued, and their actions.
    fn section(self: &Arc<Self>, host: &mut Host, f: impl FnOnce(&mut Host, &Arc<Shared>)) {
        let ran = catch_unwind(AssertUnwindSafe(|| {
            self.drain(host);
            f(host, self);
            loop {
                self.drain(host);
                host.dispatch(self);
                if lock(&self.queue).is_empty() {
                    break;
                }
            }
        }));
        let why = if ran.is_err() {
            tracing::error!("the OCapN node stopped: its core panicked");
            halt::CORE_PANICKED
        } else if self.stop_asked.load(Ordering::Acquire) {
            halt::STOPPED
        } else {
            return;
        };
        let old = self.halt_held(host, why);
        // Dropped under the lock: its drops find the node stopped, and post nothing.
        drop(old);
    }

    fn drain(&self, host: &mut Host) {
        loop {
            let work = std::mem::take(&mut *lock(&self.queue));
            if work.is_empty() {
                return;
            }
            for f in work {
                f(&mut host.core);
            }
        }
    }

    /// Stops the node: its waiting work is dropped (so `with_core` answers
    /// [`NodeStopped`]) and no more runs.
    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let dropped = std::mem::take(&mut *lock(&self.queue));
        drop(dropped);
        self.timer.notify_one();
    }

    fn wake_timer(&self) {
        self.timer.notify_one();
    }

    /// Opens connection `conn` to `peer` on a task; the core hears how it went.
    fn dial(self: &Arc<Self>, conn: ConnId, peer: PeerLocator) {
        let netlayer = self
            .netlayers
            .iter()
            .find(|n| n.transport() == peer.transport)
            .cloned();
        let shared = Arc::downgrade(self);
        self.runtime.spawn(async move {
            let result = match netlayer {
                Some(n) => n.connect(&peer).await,
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    format!("this node has no {} netlayer", peer.transport),
                )),
            };
            if let Some(shared) = shared.upgrade() {
                shared.with_host(|host, shared| host.dialled(conn, result, shared));
            }
        });
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The timer task ends.
        self.timer.notify_one();
    }
}

/// Accepts connections on `netlayer` until the node is gone.
async fn accept(netlayer: Arc<dyn Netlayer>, shared: Weak<Shared>) {
    let mut backoff = AcceptBackoff::new(netlayer.transport().to_owned());
    loop {
        match netlayer.accept().await {
            Ok(accepted) => {
                backoff.succeeded();
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                if shared.stopped.load(Ordering::Acquire) {
                    return;
                }
                shared.with_host(|host, shared| host.accepted(accepted, shared));
            }
            Err(e) => {
                if shared.strong_count() == 0 {
                    return;
                }
                backoff.failed(&e).await;
            }
        }
    }
}

/// Tells the core when its timers (hello deadlines) are due, and flushes held-back
/// `op:gc-answer`s.
///
/// While it runs, `alive` marks the thread of a current-thread runtime running this node
/// (see [`driver`]): the task ends with the node or with its runtime, whichever goes first.
async fn timer(shared: Weak<Shared>, wake: Arc<Notify>, alive: driver::Alive) {
    // Dropped unfinished, this task's runtime shut down: the node halts with it.
    let watch = RuntimeWatch::new(shared.clone());
    run_timer(shared, wake, alive).await;
    watch.disarm();
}

async fn run_timer(shared: Weak<Shared>, wake: Arc<Notify>, alive: driver::Alive) {
    // The runtime's own thread drives the node (the start may have run on a blocking one).
    driver::mark(&alive);
    // When the work queued by `Shared::post_later` gets its section at the latest.
    let mut later_by: Option<std::time::Instant> = None;
    loop {
        let at = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.stopped.load(Ordering::Acquire) {
                return;
            }
            let mut at = None;
            shared.with_host(|host, _| {
                host.timer_at = host.next_deadline();
                at = host.timer_at;
            });
            if later_by.is_none() && shared.later.load(Ordering::Acquire) {
                later_by = Some(host::now() + LATER_WITHIN);
            }
            at.into_iter().chain(later_by).min()
        };
        match at {
            Some(at) => tokio::select! {
                () = tokio::time::sleep_until(at.into()) => {
                    let Some(shared) = shared.upgrade() else { return };
                    let now = host::now();
                    if later_by.is_some_and(|by| by <= now) {
                        later_by = None;
                        // Work posted later from now on wakes this task again; what is
                        // queued already runs in the section below.
                        shared.later.store(false, Ordering::Release);
                    }
                    shared.with_host(|host, _| host.timeout(now));
                }
                () = wake.notified() => {}
            },
            None => wake.notified().await,
        }
    }
}

impl Node {
    /// Starts a node listening on `netlayers` (the first one's locator is the node's);
    /// must run inside a tokio runtime, whose tasks then serve the node's connections.
    pub fn start(
        netlayers: Vec<Arc<dyn Netlayer>>,
        config: SessionConfig,
    ) -> Result<Node, std::io::Error> {
        let first = netlayers.first().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a node needs at least one netlayer",
            )
        })?;
        let runtime = Handle::try_current().map_err(|e| {
            std::io::Error::other(format!(
                "an OCapN node starts inside a tokio runtime (its connections run there): {e}"
            ))
        })?;
        let locator = first.locator();
        // The shell flushes held-back `op:gc-answer`s (see `Host::timeout`), so a caller
        // that calls again soon sends its last answer's release with the call.
        let config = SessionConfig {
            defer_gc_answers: true,
            ..config
        };
        let timer_wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            host: Mutex::new(Host::new(Core::new(locator.clone(), config))),
            queue: Mutex::default(),
            stopped: AtomicBool::new(false),
            stop_asked: AtomicBool::new(false),
            runtime: runtime.clone(),
            netlayers: netlayers.clone(),
            timer: timer_wake.clone(),
            later: AtomicBool::new(false),
        });
        // On a current-thread runtime the node's tasks run on this thread.
        let alive = driver::Alive::default();
        driver::mark(&alive);
        for n in netlayers.into_iter().filter(|n| n.can_accept()) {
            runtime.spawn(accept(n, Arc::downgrade(&shared)));
        }
        runtime.spawn(timer(Arc::downgrade(&shared), timer_wake, alive));
        Ok(Node {
            shared,
            locator: Arc::new(locator),
            actors: Arc::default(),
            store: None,
        })
    }

    /// The node's locator.
    pub fn locator(&self) -> &PeerLocator {
        &self.locator
    }

    /// The gobs actors this node exports (see [`crate::vat::export_actor`]).
    /// A handle that does not keep the node running (see [`WeakNode`]).
    pub(crate) fn downgrade(&self) -> WeakNode {
        WeakNode {
            shared: Arc::downgrade(&self.shared),
            locator: self.locator.clone(),
            actors: self.actors.clone(),
            store: self.store.clone(),
        }
    }

    pub(crate) fn actors(&self) -> MutexGuard<'_, ActorTable> {
        self.actors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the node's core and returns its result: at once on this thread when
    /// the core is free, else on the thread that holds it.
    pub async fn with_core<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> R + Send + 'static,
    ) -> Result<R, NodeStopped> {
        let (otx, orx) = oneshot::channel();
        self.post(move |core| {
            let _ = otx.send(f(core));
        });
        orx.await.map_err(|_| NodeStopped)
    }

    /// Runs `f` on the node's core without waiting for its result (from any thread,
    /// inside a tokio runtime or not, inside the core's own callbacks too: then after the
    /// callback); does nothing if the node has stopped.
    pub fn post(&self, f: impl FnOnce(&mut Core) + Send + 'static) {
        self.shared.post(Box::new(move |core: &mut Core| {
            f(core);
            core.run();
        }));
    }

    /// Runs `f` on the node's core with its next section, without running one now (see
    /// [`Shared::post_later`]): for work nothing waits for.
    pub(crate) fn post_later(&self, f: impl FnOnce(&mut Core) + Send + 'static) {
        self.shared.post_later(Box::new(move |core: &mut Core| {
            f(core);
            core.run();
        }));
    }

    /// Takes a swiss number back (see [`Core::revoke_swiss`]): it enlivens nothing from now
    /// on. Returns whether it named an object. References peers already hold keep
    /// working. With a [`crate::persist::NodeStore`] attached, the store forgets it too
    /// (committed shortly after, not awaited); [`crate::persist::NodeStore::revoke`]
    /// waits for that commit.
    pub async fn revoke_swiss(&self, swiss: &[u8]) -> Result<bool, NodeStopped> {
        let swiss = swiss.to_vec();
        self.with_core(move |core| core.revoke_swiss(&swiss)).await
    }

    /// Binds `swiss` to a caretaker forwarding to `target` (see [`Core::bind_revocable`]):
    /// revoking the swiss number later cuts off every reference obtained through it, live
    /// ones included. Returns the caretaker.
    pub async fn bind_revocable(
        &self,
        swiss: &[u8],
        target: crate::captp::CapRef,
    ) -> Result<LocalRef, NodeStopped> {
        let swiss = swiss.to_vec();
        self.with_core(move |core| core.bind_revocable(&swiss, target))
            .await
    }

    /// Waits for a promise of this node to settle and takes its outcome; the promise is
    /// then released (see [`Core::release`]), so take it once.
    pub async fn settled(&self, p: LocalRef) -> Result<Result<Term, Term>, NodeStopped> {
        let (otx, orx) = oneshot::channel();
        self.post(move |core| {
            core.when_settled(
                p,
                Box::new(move |outcome| {
                    let _ = otx.send(outcome);
                }),
            );
            core.release(p);
        });
        orx.await.map_err(|_| NodeStopped)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::netlayer::TcpTestingOnly;

    #[tokio::test]
    async fn work_posted_for_later_runs_though_nothing_else_comes() {
        let netlayer = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let node = Node::start(vec![Arc::new(netlayer)], SessionConfig::default()).unwrap();
        // The timer task's first pass (a section) is over: it waits for a wake.
        tokio::task::yield_now().await;
        // The first wakes the timer task; the second finds it woken already and waits for
        // its deadline; the third wakes it again.
        for round in 0..3 {
            let (tx, rx) = oneshot::channel();
            node.post_later(move |_| {
                let _ = tx.send(());
            });
            // Nothing else is asked of the node: the timer task gives it a section.
            tokio::time::timeout(LATER_WITHIN * 50, rx)
                .await
                .unwrap_or_else(|_| panic!("round {round}: the work did not run"))
                .unwrap();
        }
    }

    #[tokio::test]
    async fn work_posted_for_later_runs_with_the_next_section_in_order() {
        let netlayer = TcpTestingOnly::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let node = Node::start(vec![Arc::new(netlayer)], SessionConfig::default()).unwrap();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let r = ran.clone();
        node.post_later(move |_| lock(&r).push("later"));
        assert!(lock(&ran).is_empty(), "not run at once");
        let r = ran.clone();
        node.with_core(move |_| lock(&r).push("next"))
            .await
            .unwrap();
        assert_eq!(*lock(&ran), ["later", "next"]);
    }
}
