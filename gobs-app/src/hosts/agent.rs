//! `gobs-app agent`: a host's agent. It is a gobs-app daemon of its own (its state
//! directory, config, providers, machines and control socket, as `gobs-app daemon`), plus
//! an OCapN node (tcp-tls, opened from its registry, so its identity and port are kept)
//! on which its [`HostAgent`] is reachable by the one boss it joined.
//!
//! Joining: `--join URI` enlivens the boss's one-time [`Enrolment`] and hands it a
//! reference to the agent's [`HostAgent`]; the boss keeps that reference (as its
//! sturdyref) and refuses the URI to anyone after. The agent notes that it joined, so a
//! restart needs neither `--join` nor `--listen` again: the boss reaches it where it
//! listened, on the same port, with the same sturdyref.

use std::path::Path;
use std::time::Duration;

use gobs_ocapn::captp::{DuplicateSession, SessionConfig};
use gobs_ocapn::node::Node;
use gobs_ocapn::persist::NodeStore;
use gobs_runtime::{ErrorKind as GoneKind, Ref, spawn};

use super::fleet::Enrolment;
use super::host_agent::{AGENT_VAT, HostAgent, Joined};
use super::link::Driven;
use super::model::now_unix;
use crate::backend::boss::BossBackend;
use crate::config::Config;
use crate::config::state_dir::StatePaths;
use crate::error::AppError;
use crate::hob_net::boss_gateway::HOB_DIR;
use crate::model::{BackendError, ErrorKind};

/// How long joining waits for the boss.
pub const JOIN_LIMIT: Duration = Duration::from_secs(60);

/// What `gobs-app agent` was told.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// The one-time enrolment URI (`gobs-app host add NAME` on the boss printed it); only
    /// needed until the agent joined.
    pub join: Option<String>,
    /// Where to listen for the boss (kept: only needed on the first start).
    pub listen: Option<String>,
    /// The host the boss dials, if not the address listened on.
    pub public_host: Option<String>,
}

/// Runs the agent in the foreground until SIGINT or SIGTERM.
pub fn run(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    options: AgentOptions,
) -> Result<(), AppError> {
    crate::daemon::run_with(paths, explicit_config, move |backend, config| {
        let serving = start(backend, config, &options)?;
        Ok(Box::new(serving))
    })
}

/// The agent's node, served until dropped.
struct Serving {
    _node: Node,
    _runtime: Driven,
}

fn start(
    backend: &BossBackend,
    config: &Config,
    options: &AgentOptions,
) -> Result<Serving, AppError> {
    let limit = Duration::from_secs(60);
    let vats = backend.vats();
    let boss = backend.boss().clone();
    let default_provider = config.default_provider.clone();
    let (_, agent) = vats
        .start_vat(AGENT_VAT, move || {
            spawn(HostAgent::new(boss, default_provider))
        })
        .map_err(|e| BackendError::storage(format!("cannot open the agent's vat: {e}")))?;
    let (default_provider, listen) = (config.default_provider.clone(), options.listen.clone());
    wait(
        agent.send().configure(default_provider, listen),
        limit,
        "configuring the agent",
    )?;
    let listen = wait(agent.send().listen(), limit, "reading the agent")?.ok_or_else(|| {
        invalid(
            "the agent's first start needs --listen ADDR:PORT: where it listens for its boss \
             (an address the boss reaches; port 0 picks one and keeps it)",
        )
    })?;
    let joined = wait(agent.send().joined(), limit, "reading the agent")?;
    if joined.is_none() && options.join.is_none() {
        return Err(invalid(
            "this agent has not joined a boss: run it with --join URI, the URI `gobs-app host \
             add NAME` printed on the boss",
        ));
    }
    let (node, runtime) = listen_for_boss(backend, &listen, options.public_host.as_deref())?;
    let host = match (joined, &options.join) {
        (Some(joined), Some(uri)) if &joined.enrolment != uri => {
            return Err(invalid(&format!(
                "this agent joined its boss already, as host {}, with another enrolment; \
                 start it without --join (or give it a state directory of its own to join \
                 another boss)",
                joined.host
            )));
        }
        (Some(joined), _) => joined.host,
        (None, Some(uri)) => join(&node, &runtime, &agent, uri)?,
        (None, None) => unreachable!("checked above"),
    };
    eprintln!(
        "gobs-app agent: host {host} of its boss, listening for it at {}",
        node.locator().to_uri()
    );
    Ok(Serving {
        _node: node,
        _runtime: runtime,
    })
}

/// Starts the agent's node at `listen`.
fn listen_for_boss(
    backend: &BossBackend,
    listen: &str,
    public_host: Option<&str>,
) -> Result<(Node, Driven), AppError> {
    let fail = |e: String| invalid(&format!("cannot listen for the boss at {listen}: {e}"));
    let registry = backend.vats().registry();
    // The node shares its identity with the agent's hob gateway (see the fleet's link).
    NodeStore::open(
        registry,
        Some(&backend.vats().dir().join(HOB_DIR).join("node")),
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut builder = Node::open(registry)
        .map_err(|e| fail(e.to_string()))?
        .session_config(SessionConfig {
            duplicate_session: DuplicateSession::ReplaceOld,
            ..SessionConfig::default()
        });
    if let Some(host) = public_host {
        builder = builder.public_host(host);
    }
    let runtime = Driven::start().map_err(fail)?;
    let node = runtime
        .handle
        .block_on(builder.listen_tls(listen))
        .map_err(|e| fail(e.to_string()))?;
    Ok((node, runtime))
}

/// Joins the boss through enrolment `uri`: the host's name, or the boss's refusal.
fn join(
    node: &Node,
    runtime: &Driven,
    agent: &Ref<HostAgent>,
    uri: &str,
) -> Result<String, AppError> {
    // Outer error: the boss was not reached; inner: it refused.
    let joining = {
        let (node, agent) = (node.clone(), agent.clone());
        async move {
            let enrolment: Ref<Enrolment> = node.enliven(uri).await.map_err(|e| e.to_string())?;
            match enrolment.send().join(agent).await {
                Ok(host) => Ok(Ok(host)),
                Err(e) if matches!(e.kind(), GoneKind::Unreachable | GoneKind::SessionLost) => {
                    Err(e.to_string())
                }
                Err(e) => Ok(Err(e.to_string())),
            }
        }
    };
    let answered = runtime
        .handle
        .block_on(async { tokio::time::timeout(JOIN_LIMIT, joining).await });
    let host = match answered {
        Ok(Ok(Ok(host))) => host,
        Ok(Ok(Err(refused))) => {
            return Err(invalid(&format!(
                "the boss refused this enrolment: {refused}"
            )));
        }
        Ok(Err(e)) => return Err(invalid(&format!("cannot reach the boss at {uri}: {e}"))),
        Err(_) => {
            return Err(invalid(&format!(
                "the boss at {uri} did not answer within {}",
                humantime::format_duration(JOIN_LIMIT)
            )));
        }
    };
    let joined = Joined {
        host: host.clone(),
        enrolment: uri.to_string(),
        at: now_unix(),
    };
    wait(
        agent.send().set_joined(joined),
        Duration::from_secs(60),
        "noting the join",
    )?;
    Ok(host)
}

fn invalid(message: &str) -> AppError {
    AppError::Backend(BackendError::new(ErrorKind::InvalidRequest, message))
}

fn wait<T: Send + 'static>(
    promise: gobs_runtime::Promise<T>,
    limit: Duration,
    what: &str,
) -> Result<T, AppError> {
    match promise.wait_timeout(limit) {
        Ok(answer) => Ok(answer.map_err(BackendError::from)?),
        Err(_) => Err(AppError::Backend(BackendError::internal(format!(
            "{what} took longer than {}",
            humantime::format_duration(limit)
        )))),
    }
}
