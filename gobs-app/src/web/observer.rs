//! [`Observer`]: what the HTTP side reads from the boss (records, the event log, the
//! store), without the command path: every read is an `await` on the actors' promises, so
//! a slow boss holds up no thread.

use std::path::PathBuf;
use std::time::Duration;

use gobs_runtime::store::io_stats;
use gobs_runtime::{Promise, Ref, Registry};

use crate::actors::boss::Boss;
use crate::events::log::EventLog;
use crate::events::{EventPage, EventQuery};
use crate::hob_net::boss_gateway::BossGateway;
use crate::metrics::{Snapshot, dir_bytes, resident_bytes};
use crate::model::{BackendError, MachineInfo, ProviderInfo};

/// How long a read waits for the boss.
const ANSWER: Duration = Duration::from_secs(30);

/// A read-only handle on the boss's state, for the metrics and the dashboard.
#[derive(Debug, Clone)]
pub struct Observer {
    boss: Ref<Boss>,
    events: Ref<EventLog>,
    registry: Registry,
    store_dir: PathBuf,
    default_provider: String,
    /// The boss's hob gateway: how many sessions it holds.
    gateway: BossGateway,
}

/// Waits for `future` up to [`ANSWER`].
async fn within<T>(future: impl IntoFuture<Output = T>, what: &str) -> Result<T, BackendError> {
    tokio::time::timeout(ANSWER, future).await.map_err(|_| {
        BackendError::internal(format!(
            "{what} took longer than {}; the daemon may be overloaded",
            humantime::format_duration(ANSWER)
        ))
    })
}

/// Waits for `promise` up to [`ANSWER`].
async fn answer<T: Send + 'static>(promise: Promise<T>, what: &str) -> Result<T, BackendError> {
    Ok(within(promise, what).await??)
}

/// The actors live in the registry's running vats (a vat that stops meanwhile counts
/// none). Blocks on each vat's turn: call it off the async threads.
fn live_actors(registry: &Registry) -> u64 {
    registry
        .vat_names()
        .iter()
        .filter_map(|name| registry.vat(name)?.stats().ok())
        .map(|stats| stats.actors as u64)
        .sum()
}

impl Observer {
    /// The observer of `boss`, its event log, and the registry whose store is in
    /// `store_dir`; `default_provider` is the config's; `gateway` is the boss's.
    pub fn new(
        boss: Ref<Boss>,
        events: Ref<EventLog>,
        registry: Registry,
        store_dir: PathBuf,
        default_provider: String,
        gateway: BossGateway,
    ) -> Observer {
        Observer {
            boss,
            events,
            registry,
            store_dir,
            default_provider,
            gateway,
        }
    }

    /// The machines, sorted by name, as the records say.
    pub async fn machines(&self) -> Result<Vec<MachineInfo>, BackendError> {
        answer(self.boss.send().machine_records(), "listing the machines").await
    }

    /// The enabled providers, the default marked.
    pub async fn providers(&self) -> Result<Vec<ProviderInfo>, BackendError> {
        let mut providers = answer(self.boss.send().providers(), "listing the providers").await?;
        for p in &mut providers {
            p.default = p.name == self.default_provider;
        }
        Ok(providers)
    }

    /// The events matching `query`.
    pub async fn events(&self, query: EventQuery) -> Result<EventPage, BackendError> {
        answer(self.events.send().page(query), "reading the event log").await
    }

    /// The last event's sequence number.
    pub async fn last_seq(&self) -> Result<u64, BackendError> {
        answer(self.events.send().last_seq(), "reading the event log").await
    }

    /// Resolves once there is an event after `seq` (woken by it, not polled).
    pub async fn wait_after(&self, seq: u64) -> Result<(), BackendError> {
        Ok(self.events.send().wait_after(seq).await?)
    }

    /// The figures read at a scrape.
    pub async fn snapshot(&self) -> Result<Snapshot, BackendError> {
        let machines = self.machines().await?;
        let mut counts: Vec<(String, String, u64)> = Vec::new();
        for m in &machines {
            let state = m.status.to_string();
            match counts
                .iter_mut()
                .find(|(p, s, _)| *p == m.provider && *s == state)
            {
                Some((_, _, n)) => *n += 1,
                None => counts.push((m.provider.clone(), state, 1)),
            }
        }
        let kept = answer(self.events.send().kept(), "reading the event log").await?;
        let retain = answer(self.events.send().retention(), "reading the event log").await?;
        let store_dir = self.store_dir.clone();
        let store_bytes = tokio::task::spawn_blocking(move || dir_bytes(&store_dir))
            .await
            .unwrap_or(0);
        let registry = self.registry.clone();
        let actors = within(
            tokio::task::spawn_blocking(move || live_actors(&registry)),
            "counting the vats' actors",
        )
        .await?
        .map_err(|e| BackendError::internal(format!("counting the vats' actors failed: {e}")))?;
        let hob_sessions = match self.gateway.running() {
            Some(gateway) => within(gateway.sessions(), "asking the hob gateway").await?,
            None => 0,
        };
        Ok(Snapshot {
            machines: counts,
            store_bytes,
            store_io: io_stats(),
            hob_sessions: hob_sessions as u64,
            actors,
            vats: self.registry.vat_names().len() as u64,
            events_kept: kept as u64,
            events_retained_max: retain,
            resident_bytes: resident_bytes(),
        })
    }
}
