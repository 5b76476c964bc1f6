//! `gobs-app hob-client`: the process that runs on a machine and makes it manageable by the
//! boss. Given a one-time registration sturdyref it connects to the boss over OCapN
//! (tcp-tls), registers, and exposes its **bindings** (see [`super::wire`]): `status`,
//! `run-stream` (output and standard input streamed through a capability of the boss,
//! `hob_net::run_stream`), `run-terminal` (the same, in a pseudo-terminal), `run` (for older bosses: output captured, at most
//! [`wire::MAX_REMOTE_OUTPUT`] bytes of each stream, with a note past it), `put-file` and
//! `get-file` (at most [`wire::MAX_FILE`] bytes).
//!
//! Its own state is a gobs persistence registry in its state directory
//! ([`super::client_state`]): its tcp-tls identity, the machine's name, the boss's attach
//! sturdyref and the attach credential. With that state it needs no registration
//! sturdyref again: it attaches through the attach sturdyref, and does so again, with
//! backoff, whenever the session is lost (a boss restart). Each attach is answered with the
//! next credential, committed before it is confirmed ([`super::credential`]); a client the
//! boss calls a conflict (a copy of a machine's state) stops.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gobs_ocapn::captp::{CapRef, SessionConfig, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::{Netlayer, TcpTls};
use gobs_ocapn::node::{Cx, LocalObject, Node};
use gobs_ocapn::syrup::Value;

use super::client_state::{ClientState, ClientStore, Rotation};
use super::credential::CONFLICT;
use super::gateway::DESTROYED;
use super::machine_ops;
use super::wire;

/// The environment variable a registration sturdyref may come in.
pub const REGISTRATION_ENV: &str = "GOBS_HOB_REGISTRATION";

/// How often the client checks that its session with the boss is alive.
pub const PING_PERIOD: Duration = Duration::from_secs(1);
/// Longest pause between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a hob-client that has not registered keeps trying to reach the boss: a
/// registration sturdyref is only good while its machine is being created.
pub const REGISTER_PATIENCE: Duration = Duration::from_secs(60);
/// How long one message to the boss may take before the session is taken for lost.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// What `hob-client` is given.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Its state directory.
    pub dir: PathBuf,
    /// The registration sturdyref, if it has not registered yet.
    pub registration: Option<String>,
}

/// Why the hob-client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Setting up failed (state directory, identity, runtime).
    #[error("hob-client: {0}")]
    Setup(String),
    /// The boss refused the registration (used or revoked sturdyref).
    #[error("hob-client: the boss refused the registration: {0}")]
    Refused(String),
    /// The boss could not be reached to register.
    #[error("hob-client: {0}")]
    Unreachable(String),
    /// The boss says the machine was destroyed.
    #[error("hob-client: {0}; nothing left to do")]
    Destroyed(String),
    /// The boss refused to attach this client: it is not the machine's own, or its
    /// credential was replaced.
    #[error("hob-client: the boss refused to attach: {0}")]
    Conflict(String),
}

/// Runs the hob-client until the boss refuses it or says the machine was destroyed
/// (a lost session is not a reason to stop: it reconnects).
pub fn run(options: &ClientOptions) -> Result<(), ClientError> {
    let setup = ClientError::Setup;
    let mut store = ClientStore::open(&options.dir).map_err(setup)?;
    let identity = store.tls().map_err(setup)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| setup(format!("cannot start a runtime: {e}")))?;
    let served = runtime.block_on(async {
        let netlayer = TcpTls::bind(
            "127.0.0.1:0"
                .parse()
                .map_err(|_| setup("bad address".into()))?,
            &identity,
            None,
        )
        .await
        .map_err(|e| setup(format!("cannot open the tcp-tls netlayer: {e}")))?;
        let node = Node::start(
            vec![Arc::new(netlayer) as Arc<dyn Netlayer>],
            SessionConfig::default(),
        )
        .map_err(|e| setup(format!("cannot start the OCapN node: {e}")))?;
        let cell = Arc::new(OnceLock::new());
        let _ = cell.set(node.clone());
        let bindings = node
            .with_core(move |core| {
                let bindings = core.spawn(Box::new(Bindings { node: cell }));
                // Handed to the boss again on every reattach: the node must not collect it
                // when a session (and with it the boss's import) ends.
                core.pin(bindings);
                Term::local(bindings)
            })
            .await
            .map_err(|e| setup(e.to_string()))?;
        let state = match store.state().await.map_err(setup)? {
            Some(state) => state,
            None => {
                let uri = options.registration.clone().ok_or_else(|| {
                    setup(format!(
                        "not registered yet and no registration sturdyref given: pass \
                         --registration URI or set ${REGISTRATION_ENV} (state: {})",
                        options.dir.display()
                    ))
                })?;
                let state = register(&node, &uri, bindings.clone()).await?;
                store.keep(state.clone()).await.map_err(setup)?;
                state
            }
        };
        tracing::info!(machine = state.machine, "hob-client registered; serving");
        serve(&node, state, &store, bindings).await
    });
    store.close();
    served
}

/// Registers through the registration sturdyref `uri`: what to keep of the answer.
async fn register(node: &Node, uri: &str, bindings: Term) -> Result<ClientState, ClientError> {
    let sturdyref = Sturdyref::parse(uri.trim()).map_err(|e| {
        ClientError::Setup(format!("the registration sturdyref is not usable: {e}"))
    })?;
    let mut pause = Duration::from_millis(100);
    let answer = loop {
        match ask(
            node,
            &sturdyref,
            wire::call("register", vec![bindings.clone()]),
        )
        .await
        {
            Ok(answer) => break answer,
            Err(Asked::Refused(why)) => return Err(ClientError::Refused(why)),
            Err(Asked::Lost(why)) => {
                tracing::warn!("cannot reach the boss to register ({why}); retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
    };
    let parts = match answer.to_value() {
        Some(Value::List(parts)) => parts,
        _ => Vec::new(),
    };
    let (Some(machine), Some(attach), Some(secret)) = (
        parts.first().and_then(|v| v.as_str()).map(str::to_owned),
        parts.get(1).and_then(|v| v.as_bytes()).map(<[u8]>::to_vec),
        parts.get(2).and_then(|v| v.as_bytes()),
    ) else {
        return Err(ClientError::Setup(format!(
            "the boss answered the registration with {answer:?}, not [machine attach-swiss \
             credential]"
        )));
    };
    let boss = Sturdyref {
        peer: sturdyref.peer.clone(),
        swiss: attach,
    };
    Ok(ClientState {
        machine,
        boss: boss.to_uri(),
        credential: Some(secret.to_vec()),
        rotation: Rotation::Confirmed,
    })
}

enum Asked {
    /// The boss answered with a refusal.
    Refused(String),
    /// No answer: the session could not be made or was lost.
    Lost(String),
}

/// Enlivens `sturdyref` and sends it `args`.
async fn ask(node: &Node, sturdyref: &Sturdyref, args: Vec<Term>) -> Result<Term, Asked> {
    let live = enliven(node, sturdyref).await?;
    send(node, live, args).await
}

async fn enliven(node: &Node, sturdyref: &Sturdyref) -> Result<CapRef, Asked> {
    let s = sturdyref.clone();
    let p = node
        .with_core(move |core| core.enliven(&s))
        .await
        .map_err(|e| Asked::Lost(e.to_string()))?;
    match tokio::time::timeout(ANSWER_LIMIT, node.settled(p)).await {
        Ok(Ok(Ok(Term::Ref(r)))) => Ok(r),
        Ok(Ok(Ok(other))) => Err(Asked::Refused(format!(
            "the sturdyref named {other:?}, not an object"
        ))),
        Ok(Ok(Err(e))) => Err(Asked::Lost(wire::failure(&e))),
        Ok(Err(e)) => Err(Asked::Lost(e.to_string())),
        Err(_) => Err(Asked::Lost("no answer in time".into())),
    }
}

async fn send(node: &Node, to: CapRef, args: Vec<Term>) -> Result<Term, Asked> {
    let p = node
        .with_core(move |core| core.send(to, args))
        .await
        .map_err(|e| Asked::Lost(e.to_string()))?;
    match tokio::time::timeout(ANSWER_LIMIT, node.settled(p)).await {
        Ok(Ok(Ok(answer))) => Ok(answer),
        Ok(Ok(Err(e))) => {
            let why = wire::failure(&e);
            // A lost connection breaks the promise with a message naming the connection.
            if why.starts_with("connection to ") || why.starts_with("session ") {
                Err(Asked::Lost(why))
            } else {
                Err(Asked::Refused(why))
            }
        }
        Ok(Err(e)) => Err(Asked::Lost(e.to_string())),
        Err(_) => Err(Asked::Lost("no answer in time".into())),
    }
}

/// Keeps the machine attached: pings, and attaches again (with backoff) when the session
/// is lost.
async fn serve(
    node: &Node,
    mut state: ClientState,
    store: &ClientStore,
    bindings: Term,
) -> Result<(), ClientError> {
    let boss = Sturdyref::parse(&state.boss)
        .map_err(|e| ClientError::Setup(format!("the saved boss sturdyref is not usable: {e}")))?;
    let mut live: Option<CapRef> = None;
    let mut pause = Duration::from_millis(100);
    loop {
        let outcome = match live.clone() {
            Some(r) => send(node, r, wire::call("ping", vec![])).await.map(|_| ()),
            None => match enliven(node, &boss).await {
                Ok(r) => attach(node, &r, &mut state, store, &bindings)
                    .await
                    .map(|()| live = Some(r)),
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(()) => {
                pause = Duration::from_millis(100);
                tokio::time::sleep(PING_PERIOD).await;
            }
            Err(Asked::Refused(why)) if why.starts_with(DESTROYED) => {
                return Err(ClientError::Destroyed(why));
            }
            Err(Asked::Refused(why)) if why.starts_with(CONFLICT) => {
                return Err(ClientError::Conflict(why));
            }
            Err(Asked::Refused(why)) | Err(Asked::Lost(why)) => {
                if live.take().is_some() {
                    tracing::warn!("lost the session with the boss ({why}); reconnecting");
                } else {
                    tracing::debug!("cannot attach yet ({why}); retrying in {pause:?}");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Attaches the bindings through the live attach reference `to` with the saved
/// credential; commits the next one the boss answers and only then confirms it, so that a
/// crash in between leaves a credential the boss accepts.
async fn attach(
    node: &Node,
    to: &CapRef,
    state: &mut ClientState,
    store: &ClientStore,
    bindings: &Term,
) -> Result<(), Asked> {
    if state.rotation == Rotation::Stored {
        tracing::info!(
            "attaching with a credential stored but not confirmed (the client stopped \
             while it rotated); the boss accepts it"
        );
    }
    let args = wire::attach_args(bindings.clone(), state.credential.as_deref());
    let answer = send(node, to.clone(), args).await?;
    let (machine, next) = wire::parse_attached(&answer).map_err(Asked::Refused)?;
    tracing::info!(machine, "attached to the boss");
    let Some(next) = next else {
        return Ok(());
    };
    if let Err(e) = store.store_next(&next).await {
        // The boss still accepts the saved credential: serve on, rotate at the next attach.
        tracing::error!("{e}; keeping the old credential");
        return Ok(());
    }
    state.credential = Some(next.clone());
    state.rotation = Rotation::Stored;
    let confirm = wire::call("confirm", vec![Term::Data(Value::Bytes(next.clone()))]);
    send(node, to.clone(), confirm).await?;
    match store.confirmed(&next).await {
        Ok(()) => state.rotation = Rotation::Confirmed,
        Err(e) => tracing::warn!("{e}"),
    }
    Ok(())
}

/// The machine's bindings, one object answering by binding name.
struct Bindings {
    node: Arc<OnceLock<Node>>,
}

impl LocalObject for Bindings {
    fn deliver(&mut self, cx: &mut Cx<'_>, args: Vec<Term>) -> Result<Term, Term> {
        let (name, args) = wire::method(args)?;
        match name.as_str() {
            "binding-names" => Ok(Term::List(
                crate::ops::MACHINE_BINDINGS
                    .iter()
                    .map(|n| wire::text(n))
                    .collect(),
            )),
            "status" => Ok(wire::text("running")),
            other => machine_ops::answer(cx, &self.node, other, &args),
        }
    }
}
