//! [`HostAgent`]: what a host's agent offers its boss, as an actor in the agent's own
//! registry (vat [`AGENT_VAT`]). The boss holds it as a far reference (saved as its
//! sturdyref); the agent's own boss (the agent is a gobs-app daemon of its own, with its
//! providers and its machines) does the work.

use std::sync::Arc;

use gobs_runtime::{Promise, Ref, define_actor};
use serde::{Deserialize, Serialize};

use crate::actors::boss::Boss;
use crate::daemon::protocol::MAX_REQUEST_BYTES;
use crate::model::{BackendError, Cancel};
use crate::ops::{MachineCall, Request, Response};
use crate::progress::Progress;

/// The agent's vat in its registry.
pub const AGENT_VAT: &str = "host-agent";

/// What an agent knows of the boss it joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// Its name as the boss knows it.
    pub host: String,
    /// The enrolment URI it joined with (spent: shown, never used again).
    pub enrolment: String,
    /// When, in seconds since the Unix epoch.
    pub at: u64,
}

/// A host's agent, as its boss reaches it (see the module docs). Every method but the
/// `local` ones is callable by whoever holds a reference: only the boss the agent joined
/// ever got one.
#[define_actor]
#[derive(Debug)]
pub struct HostAgent {
    /// The agent's own boss, which keeps its machines.
    boss: Ref<Boss>,
    /// Its provider for machines the boss asks for without one.
    default_provider: String,
    /// Where it listens for its boss (kept, as its sturdyref names it).
    listen: Option<String>,
    /// The boss it joined, once it did.
    joined: Option<Joined>,
}

#[define_actor]
impl HostAgent {
    /// Answers, so the boss knows the host is reachable: the agent's time (seconds since
    /// the Unix epoch).
    pub fn ping(&self) -> u64 {
        super::model::now_unix()
    }

    /// Makes machine `name` with provider `provider` (the agent's default if `None`, which
    /// a boss sends by leaving it out): answers its record.
    pub fn create_machine(&self, name: String, provider: Option<String>) -> Promise<String> {
        let provider = provider.unwrap_or_else(|| self.default_provider.clone());
        // A remote creation's steps are not carried back to the boss yet.
        as_json(
            self.boss
                .send()
                .create_machine(name, provider, Progress::none()),
        )
    }

    /// The records of the machines of this host.
    pub fn machines(&self) -> Promise<String> {
        as_json(self.boss.send().list_machines())
    }

    /// Destroys machine `name`: answers its last record.
    pub fn destroy_machine(&self, name: String) -> Promise<String> {
        let destroyed = self
            .boss
            .send()
            .destroy_machine(name, Progress::none())
            .then_try(|done| done.unwrap_or_else(|e| Err(BackendError::from(e))));
        as_json(destroyed)
    }

    /// Has machine `request` names do it: `request` is a machine operation as the control
    /// socket carries it (JSON), and so is the answer. Refuses anything else.
    pub fn machine_request(&self, request: String) -> Result<Promise<String>, BackendError> {
        let call = machine_call(&request)?;
        Ok(self
            .boss
            .send()
            .on_machine(call, Cancel::new())
            .then(|answer| {
                let response = match answer {
                    Ok(Ok(response)) => response,
                    Ok(Err(e)) => Response::Error(e),
                    Err(e) => Response::Error(BackendError::from(e)),
                };
                serde_json::to_string(&response).unwrap_or_else(|e| {
                    format!(r#"{{"type":"error","data":{{"kind":"internal","message":"cannot write the answer: {e}"}}}}"#)
                })
            }))
    }

    /// The boss it joined, if it did.
    #[actor(local)]
    pub fn joined(&self) -> Option<Joined> {
        self.joined.clone()
    }

    /// Where it listens for its boss, if it was told.
    #[actor(local)]
    pub fn listen(&self) -> Option<String> {
        self.listen.clone()
    }

    /// Notes that it joined.
    #[actor(local)]
    pub fn set_joined(&mut self, joined: Joined) {
        self.joined = Some(joined);
    }

    /// Follows the agent's config and command line (written only if they changed).
    #[actor(local)]
    pub fn configure(&mut self, default_provider: String, listen: Option<String>) {
        if self.default_provider != default_provider {
            self.default_provider = default_provider;
        }
        if listen.is_some() && self.listen != listen {
            self.listen = listen;
        }
    }
}

impl HostAgent {
    /// The agent of a host not joined yet, doing its work through `boss`.
    pub fn new(boss: Ref<Boss>, default_provider: String) -> HostAgent {
        HostAgent {
            boss,
            default_provider,
            listen: None,
            joined: None,
        }
    }
}

/// Records cross as the control socket writes them (JSON): a `None` does not survive a
/// by-name call (CapTP has no nil; it arrives as an empty list), and records have several.
fn as_json<T: Serialize + Send + 'static>(answer: Promise<T>) -> Promise<String> {
    answer.then_try(|answer| {
        let answer = answer.map_err(BackendError::from)?;
        serde_json::to_string(&answer)
            .map_err(|e| BackendError::internal(format!("cannot write the answer: {e}")))
    })
}

/// The machine operation `request` asks for, or why it is refused.
fn machine_call(request: &str) -> Result<Arc<dyn MachineCall>, BackendError> {
    if request.len() > MAX_REQUEST_BYTES {
        return Err(BackendError::invalid(format!(
            "a machine request of {} bytes is over the limit of {MAX_REQUEST_BYTES}",
            request.len()
        )));
    }
    let request: Request = serde_json::from_str(request)
        .map_err(|e| BackendError::invalid(format!("not a request this agent reads: {e}")))?;
    let op = request.op();
    request.into_machine_call().ok_or_else(|| {
        BackendError::invalid(format!(
            "`{op}` is not a machine operation; an agent does only those for its boss"
        ))
    })
}
