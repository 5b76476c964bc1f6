//! The node's shell: one tokio task owns the [`Core`]; each connection has a reader and a
//! writer task on the same reactor (no thread per connection).
//!
//! When a session ends, its writer flushes (the `op:abort` goes out), shuts down its
//! half of the stream, and the reader keeps draining what the peer still sends until the
//! peer closes or 10 s pass — closing with unread bytes would make the kernel answer the
//! peer with a reset instead of an orderly end of stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::{Action, ActorTable, Core};
use crate::captp::{ConnId, LocalRef, SessionConfig, Term};
use crate::locator::PeerLocator;
use crate::netlayer::{Netlayer, Stream};

type CoreFn = Box<dyn FnOnce(&mut Core) + Send>;

enum Msg {
    Accepted(Stream),
    Connected(ConnId, std::io::Result<Stream>),
    Bytes(ConnId, Vec<u8>),
    Closed(ConnId, String),
    Call(CoreFn),
}

/// Why the shell's task woke up.
enum Wake {
    Msg(Msg),
    /// A timer of the core's is due.
    Timeout,
}

enum WriterCmd {
    Bytes(Vec<u8>),
    Close,
}

/// A running node. Cloning gives another handle to the same node; the node runs until
/// its last handle is dropped and its connections end.
#[derive(Clone)]
pub struct Node {
    tx: mpsc::UnboundedSender<Msg>,
    locator: PeerLocator,
    /// The gobs actors the node exports (touched only on the node's task, so the lock
    /// is never contended).
    actors: Arc<Mutex<ActorTable>>,
    /// Where it keeps its port and published names, if opened from a registry.
    pub(super) store: Option<crate::persist::NodeStore>,
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

impl Node {
    /// Starts a node listening on `netlayers` (the first one's locator is the node's);
    /// must run inside a tokio runtime.
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
        let locator = first.locator();
        let (tx, rx) = mpsc::unbounded_channel();
        for n in &netlayers {
            if n.can_accept() {
                let n = n.clone();
                let tx = tx.downgrade();
                tokio::spawn(async move {
                    loop {
                        match n.accept().await {
                            Ok(stream) => {
                                let Some(tx) = tx.upgrade() else { return };
                                if tx.send(Msg::Accepted(stream)).is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(transport = n.transport(), error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                });
            }
        }
        let core = Core::new(locator.clone(), config);
        tokio::spawn(run(core, netlayers, rx, tx.downgrade()));
        Ok(Node {
            tx,
            locator,
            actors: Arc::default(),
            store: None,
        })
    }

    /// The node's locator.
    pub fn locator(&self) -> &PeerLocator {
        &self.locator
    }

    /// The gobs actors this node exports (see [`crate::vat::export_actor`]).
    pub(crate) fn actors(&self) -> MutexGuard<'_, ActorTable> {
        self.actors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the node's core, on the node's task, and returns its result.
    pub async fn with_core<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> R + Send + 'static,
    ) -> Result<R, NodeStopped> {
        let (otx, orx) = oneshot::channel();
        let call: CoreFn = Box::new(move |core: &mut Core| {
            let r = f(core);
            core.run();
            let _ = otx.send(r);
        });
        self.tx.send(Msg::Call(call)).map_err(|_| NodeStopped)?;
        orx.await.map_err(|_| NodeStopped)
    }

    /// Runs `f` on the node's core without waiting (from any thread, inside a tokio runtime
    /// or not); does nothing if the node has stopped.
    pub fn post(&self, f: impl FnOnce(&mut Core) + Send + 'static) {
        let call: CoreFn = Box::new(move |core: &mut Core| {
            f(core);
            core.run();
        });
        let _ = self.tx.send(Msg::Call(call));
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
        target: crate::captp::Ref,
    ) -> Result<LocalRef, NodeStopped> {
        let swiss = swiss.to_vec();
        self.with_core(move |core| core.bind_revocable(&swiss, target))
            .await
    }

    /// Waits for a promise of this node to settle and takes its outcome; the promise is
    /// then released (see [`Core::release`]), so take it once.
    pub async fn settled(&self, p: LocalRef) -> Result<Result<Term, Term>, NodeStopped> {
        let (otx, orx) = oneshot::channel();
        self.with_core(move |core| {
            core.when_settled(
                p,
                Box::new(move |outcome| {
                    let _ = otx.send(outcome);
                }),
            )
        })
        .await?;
        let outcome = orx.await.map_err(|_| NodeStopped)?;
        self.post(move |core| core.release(p));
        Ok(outcome)
    }
}

async fn run(
    mut core: Core,
    netlayers: Vec<Arc<dyn Netlayer>>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    tx: mpsc::WeakUnboundedSender<Msg>,
) {
    let mut writers: HashMap<ConnId, mpsc::UnboundedSender<WriterCmd>> = HashMap::new();
    let mut unconnected: HashMap<ConnId, (Vec<u8>, bool)> = HashMap::new();
    loop {
        // The core's timers (hello deadlines) run on this task's clock.
        let wake = match core.poll_timeout() {
            Some(at) => tokio::select! {
                msg = rx.recv() => msg.map(Wake::Msg),
                () = tokio::time::sleep_until(at.into()) => Some(Wake::Timeout),
            },
            None => rx.recv().await.map(Wake::Msg),
        };
        let Some(wake) = wake else { break };
        match wake {
            Wake::Timeout => core.handle_timeout(Instant::now()),
            Wake::Msg(Msg::Accepted(stream)) => {
                let conn = core.accepted();
                writers.insert(conn, spawn_conn(conn, stream, &tx));
                core.connected(conn, Instant::now());
            }
            Wake::Msg(Msg::Connected(conn, Ok(stream))) => {
                let w = spawn_conn(conn, stream, &tx);
                core.connected(conn, Instant::now());
                if let Some((bytes, close)) = unconnected.remove(&conn) {
                    if !bytes.is_empty() {
                        let _ = w.send(WriterCmd::Bytes(bytes));
                    }
                    if close {
                        let _ = w.send(WriterCmd::Close);
                        continue;
                    }
                }
                writers.insert(conn, w);
            }
            Wake::Msg(Msg::Connected(conn, Err(e))) => {
                unconnected.remove(&conn);
                core.dial_failed(conn, &e.to_string());
            }
            Wake::Msg(Msg::Bytes(conn, bytes)) => core.bytes(conn, &bytes),
            Wake::Msg(Msg::Closed(conn, why)) => {
                writers.remove(&conn);
                core.closed(conn, &why);
            }
            Wake::Msg(Msg::Call(f)) => f(&mut core),
        }
        for action in core.take_actions() {
            match action {
                Action::Write(conn, bytes) => match writers.get(&conn) {
                    Some(w) => {
                        let _ = w.send(WriterCmd::Bytes(bytes));
                    }
                    None => {
                        if let Some(u) = unconnected.get_mut(&conn) {
                            u.0.extend_from_slice(&bytes);
                        }
                    }
                },
                Action::Close(conn) => {
                    if let Some(w) = writers.remove(&conn) {
                        let _ = w.send(WriterCmd::Close);
                    } else if let Some(u) = unconnected.get_mut(&conn) {
                        u.1 = true;
                    }
                }
                Action::Dial(conn, peer) => {
                    unconnected.insert(conn, (Vec::new(), false));
                    let netlayer = netlayers
                        .iter()
                        .find(|n| n.transport() == peer.transport)
                        .cloned();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let result = match netlayer {
                            Some(n) => n.connect(&peer).await,
                            None => Err(std::io::Error::new(
                                std::io::ErrorKind::Unsupported,
                                format!("this node has no {} netlayer", peer.transport),
                            )),
                        };
                        if let Some(tx) = tx.upgrade() {
                            let _ = tx.send(Msg::Connected(conn, result));
                        }
                    });
                }
            }
        }
    }
}

fn spawn_conn(
    conn: ConnId,
    stream: Stream,
    tx: &mpsc::WeakUnboundedSender<Msg>,
) -> mpsc::UnboundedSender<WriterCmd> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (wtx, mut wrx) = mpsc::unbounded_channel::<WriterCmd>();
    let closing = Arc::new(AtomicBool::new(false));
    let closing_w = closing.clone();
    tokio::spawn(async move {
        while let Some(cmd) = wrx.recv().await {
            match cmd {
                WriterCmd::Bytes(b) => {
                    if writer.write_all(&b).await.is_err() {
                        break;
                    }
                }
                WriterCmd::Close => break,
            }
        }
        let _ = writer.flush().await;
        let _ = writer.shutdown().await;
        closing_w.store(true, Ordering::SeqCst);
    });
    let tx = tx.clone();
    tokio::spawn(async move {
        // 16 KiB: a frame larger than this arrives in several reads; a small buffer keeps an
        // idle session cheap (ten thousand of them are a benchmark case).
        let mut buf = vec![0u8; 16 * 1024];
        let why = loop {
            let read = if closing.load(Ordering::SeqCst) {
                match tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf)).await {
                    Ok(r) => r,
                    Err(_) => break "closed".to_owned(),
                }
            } else {
                reader.read(&mut buf).await
            };
            match read {
                Ok(0) => break "closed by the peer".to_owned(),
                Ok(n) => {
                    let Some(tx) = tx.upgrade() else { return };
                    if tx.send(Msg::Bytes(conn, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) => break e.to_string(),
            }
        };
        if let Some(tx) = tx.upgrade() {
            let _ = tx.send(Msg::Closed(conn, why));
        }
    });
    wtx
}
