//! `gobs-app hob-client`: the process that runs on a machine and makes it manageable by the
//! boss. Given a one-time registration sturdyref it connects to the boss over OCapN
//! (tcp-tls), registers, and exposes its **bindings** (see [`super::wire`]): `status`,
//! `run-stream` (output and standard input streamed through a capability of the boss,
//! [`super::run_stream`]), `run` (for older bosses: output captured, at most
//! [`wire::MAX_REMOTE_OUTPUT`] bytes of each stream, with a note past it), `put-file` and
//! `get-file` (at most [`wire::MAX_FILE`] bytes).
//!
//! Its own state is a small directory: `node` (its tcp-tls identity) and `client.json`
//! (the machine's name, the boss's attach sturdyref, the attach credential, the bindings).
//! With that state it needs no registration sturdyref again: it attaches through the
//! attach sturdyref, and does so again, with backoff, whenever the session is lost (a boss
//! restart). Each attach is answered with the next credential, stored before it is
//! confirmed ([`super::credential`]); a client the boss calls a conflict (a copy of a
//! machine's state) stops.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gobs_ocapn::captp::{CapRef, SessionConfig, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::netlayer::{Netlayer, TcpTls};
use gobs_ocapn::node::{Cx, LocalObject, Node};
use gobs_ocapn::persist::NodeState;
use gobs_ocapn::syrup::Value;
use serde::{Deserialize, Serialize};

use super::credential::{self, CONFLICT};
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientState {
    machine: String,
    /// The boss's attach sturdyref for this machine.
    boss: String,
    /// The attach credential (base64url); absent in state from before rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
    bindings: Vec<String>,
}

/// Runs the hob-client until the boss refuses it or says the machine was destroyed
/// (a lost session is not a reason to stop: it reconnects).
pub fn run(options: &ClientOptions) -> Result<(), ClientError> {
    let setup = ClientError::Setup;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&options.dir)
        .map_err(|e| setup(format!("cannot create {}: {e}", options.dir.display())))?;
    let identity = NodeState::open(&options.dir.join("node")).map_err(|e| setup(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| setup(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(async move {
        let netlayer = TcpTls::bind(
            "127.0.0.1:0"
                .parse()
                .map_err(|_| setup("bad address".into()))?,
            &identity.tls,
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
        let state_path = options.dir.join("client.json");
        let state = match read_state(&state_path)? {
            Some(state) => state,
            None => {
                let uri = options.registration.clone().ok_or_else(|| {
                    setup(format!(
                        "not registered yet and no registration sturdyref given: pass \
                         --registration URI or set ${REGISTRATION_ENV} (state: {})",
                        options.dir.display()
                    ))
                })?;
                register(&node, &uri, bindings.clone(), &state_path).await?
            }
        };
        tracing::info!(machine = state.machine, "hob-client registered; serving");
        serve(&node, state, &state_path, bindings).await
    })
}

async fn register(
    node: &Node,
    uri: &str,
    bindings: Term,
    state_path: &Path,
) -> Result<ClientState, ClientError> {
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
    let state = ClientState {
        machine,
        boss: boss.to_uri(),
        credential: Some(credential::encode(secret)),
        bindings: crate::ops::MACHINE_BINDINGS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    write_state(state_path, &state)?;
    Ok(state)
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
    state_path: &Path,
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
                Ok(r) => attach(node, &r, &mut state, state_path, &bindings)
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
/// credential; stores the next one the boss answers (durably, in `state_path`) and only
/// then confirms it, so that a crash in between leaves a credential the boss accepts.
async fn attach(
    node: &Node,
    to: &CapRef,
    state: &mut ClientState,
    state_path: &Path,
    bindings: &Term,
) -> Result<(), Asked> {
    let saved = match &state.credential {
        Some(text) => Some(credential::decode(text).map_err(Asked::Refused)?),
        None => None,
    };
    let args = wire::attach_args(bindings.clone(), saved.as_deref());
    let answer = send(node, to.clone(), args).await?;
    let (machine, next) = wire::parse_attached(&answer).map_err(Asked::Refused)?;
    tracing::info!(machine, "attached to the boss");
    let Some(next) = next else {
        return Ok(());
    };
    let stored = ClientState {
        credential: Some(credential::encode(&next)),
        ..state.clone()
    };
    if let Err(e) = write_state(state_path, &stored) {
        // The boss still accepts the saved credential: serve on, rotate at the next attach.
        tracing::error!("cannot store the next attach credential ({e}); keeping the old one");
        return Ok(());
    }
    *state = stored;
    let confirm = wire::call("confirm", vec![Term::Data(Value::Bytes(next))]);
    send(node, to.clone(), confirm).await.map(|_| ())
}

fn read_state(path: &Path) -> Result<Option<ClientState>, ClientError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ClientError::Setup(format!(
                "{} is damaged ({e}); move it away and register the machine again with a new \
                 registration sturdyref",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClientError::Setup(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn write_state(path: &Path, state: &ClientState) -> Result<(), ClientError> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| ClientError::Setup(format!("cannot encode the state: {e}")))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| ClientError::Setup(format!("cannot write {}: {e}", path.display())))
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
