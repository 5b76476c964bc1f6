//! Metrics in the Prometheus (OpenMetrics) text exposition, for the daemon's opt-in
//! `[metrics]` listener.
//!
//! Two kinds of figures:
//! - recorded as things happen, for the life of the process ([`observe_event`], fed by the
//!   event log): how long creating and destroying machines took, failures by reason,
//!   operator commands;
//! - read at each scrape ([`Snapshot`]): machines by provider and state, the store's size,
//!   commits and fsync durations, the vats and their live actors, the hob gateway's
//!   sessions, the events kept, the process's resident memory.
//!
//! Names follow the Prometheus conventions: `gobs_` prefix, base units (seconds, bytes),
//! `_total` on counters; label values come from small fixed sets (providers, states,
//! reasons, operations), never from machine names or error texts.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use gobs_runtime::store::{FsyncHistogram, StoreIoStats};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::events::{Event, MachineState, What};

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    provider: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Failure {
    provider: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Command {
    op: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Machines {
    provider: String,
    state: String,
}

type Durations = Family<Outcome, Histogram, fn() -> Histogram>;

/// Creating takes from milliseconds (dummy) to minutes (a VM): 5 ms … ~20 min.
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 4.0, 10))
}

/// What is recorded as it happens.
#[derive(Debug)]
struct Recorded {
    create: Durations,
    destroy: Durations,
    failures: Family<Failure, Counter>,
    commands: Family<Command, Counter>,
    events: Counter,
    /// Each machine's last state and when it began, to time the transitions.
    since: Mutex<HashMap<String, (MachineState, u64)>>,
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| Recorded {
        create: Family::new_with_constructor(duration_buckets),
        destroy: Family::new_with_constructor(duration_buckets),
        failures: Family::default(),
        commands: Family::default(),
        events: Counter::default(),
        since: Mutex::new(HashMap::new()),
    })
}

/// Records what `event` says: the end of a creation or destruction (its duration), a
/// failure (its reason: `create`, `destroy`, or `restart` when gobs-app stopped meanwhile),
/// an operator command.
pub fn observe_event(event: &Event) {
    let r = recorded();
    r.events.inc();
    match &event.what {
        What::Command { op, error, .. } => {
            let outcome = if error.is_some() { "error" } else { "ok" };
            r.commands
                .get_or_create(&Command {
                    op: op.clone(),
                    outcome: outcome.into(),
                })
                .inc();
        }
        What::Conflict { .. } => {}
        What::State {
            state, provider, ..
        } => {
            let Some(machine) = &event.machine else {
                return;
            };
            let mut since = r.since.lock().unwrap_or_else(PoisonError::into_inner);
            let before = since.get(machine).copied();
            let took = |start: u64| event.at_ms.saturating_sub(start) as f64 / 1000.0;
            let labels = |outcome: &str| Outcome {
                provider: provider.clone(),
                outcome: outcome.into(),
            };
            match (before, state) {
                (Some((MachineState::Creating, start)), MachineState::Running) => {
                    r.create.get_or_create(&labels("ok")).observe(took(start));
                }
                (Some((MachineState::Creating, start)), MachineState::Failed) => {
                    r.create
                        .get_or_create(&labels("failed"))
                        .observe(took(start));
                }
                (Some((MachineState::Destroying, start)), MachineState::Destroyed) => {
                    r.destroy.get_or_create(&labels("ok")).observe(took(start));
                }
                (Some((MachineState::Destroying, start)), MachineState::Failed) => {
                    r.destroy
                        .get_or_create(&labels("failed"))
                        .observe(took(start));
                }
                _ => {}
            }
            if *state == MachineState::Failed {
                let reason = match before {
                    Some((MachineState::Creating, _)) => "create",
                    Some((MachineState::Destroying, _)) => "destroy",
                    _ => "restart",
                };
                r.failures
                    .get_or_create(&Failure {
                        provider: provider.clone(),
                        reason: reason.into(),
                    })
                    .inc();
            }
            if *state == MachineState::Destroyed {
                since.remove(machine);
            } else {
                since.insert(machine.clone(), (*state, event.at_ms));
            }
        }
    }
}

/// What is read at each scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// How many machines each (provider, state) has.
    pub machines: Vec<(String, String, u64)>,
    /// Bytes of the store's files (`<state-dir>/vats/`).
    pub store_bytes: u64,
    /// The store's commits and fsync durations, since the process started.
    pub store_io: StoreIoStats,
    /// OCapN sessions the hob gateway holds open (0 when it is not running).
    pub hob_sessions: u64,
    /// Actors live in the registry's running vats.
    pub actors: u64,
    /// Vats the persistence registry holds.
    pub vats: u64,
    /// Events the log keeps, and its retention.
    pub events_kept: u64,
    /// The log's retention.
    pub events_retained_max: u64,
    /// The process's resident memory, if `/proc` tells.
    pub resident_bytes: Option<u64>,
}

fn gauge(value: u64) -> Gauge {
    let gauge = Gauge::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    gauge
}

/// The runtime's fsync histogram, encoded as a Prometheus histogram.
#[derive(Debug)]
struct FsyncDurations(FsyncHistogram);

impl EncodeMetric for FsyncDurations {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // The encoder writes `+Inf` for `f64::MAX` only.
        let buckets: Vec<(f64, u64)> = self
            .0
            .buckets
            .iter()
            .map(|&(le, n)| (if le.is_finite() { le } else { f64::MAX }, n))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.0.sum_seconds, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The exposition text: what was recorded, and `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let r = recorded();
    let mut registry = Registry::default();
    let machines: Family<Machines, Gauge> = Family::default();
    for (provider, state, count) in &snapshot.machines {
        machines
            .get_or_create(&Machines {
                provider: provider.clone(),
                state: state.clone(),
            })
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
    }
    registry.register("gobs_machines", "Machines by provider and state", machines);
    registry.register(
        "gobs_machine_create_duration_seconds",
        "Time from asking for a machine to it running or failing",
        r.create.clone(),
    );
    registry.register(
        "gobs_machine_destroy_duration_seconds",
        "Time from asking to destroy a machine to it being gone or failing",
        r.destroy.clone(),
    );
    registry.register(
        "gobs_machine_failures",
        "Machines that failed, by provider and reason (create, destroy, restart)",
        r.failures.clone(),
    );
    registry.register(
        "gobs_operator_commands",
        "Operator commands that act on machines, by operation and outcome",
        r.commands.clone(),
    );
    registry.register(
        "gobs_events",
        "Entries added to the event log by this process",
        r.events.clone(),
    );
    registry.register(
        "gobs_events_kept",
        "Entries the event log keeps now",
        gauge(snapshot.events_kept),
    );
    registry.register(
        "gobs_events_retained_max",
        "How many entries the event log keeps at most ([events] retain)",
        gauge(snapshot.events_retained_max),
    );
    registry.register(
        "gobs_store_size_bytes",
        "Bytes of the store's files",
        gauge(snapshot.store_bytes),
    );
    registry.register(
        "gobs_vats",
        "Vats the persistence registry holds",
        gauge(snapshot.vats),
    );
    registry.register(
        "gobs_actors",
        "Actors live in the persistence registry's running vats",
        gauge(snapshot.actors),
    );
    registry.register(
        "gobs_store_commits",
        "Commits the store wrote",
        ConstCounter::new(snapshot.store_io.commits),
    );
    registry.register(
        "gobs_store_fsync_duration_seconds",
        "How long the store's fsyncs took",
        FsyncDurations(snapshot.store_io.fsyncs.clone()),
    );
    registry.register(
        "gobs_hob_sessions",
        "OCapN sessions the hob gateway holds open",
        gauge(snapshot.hob_sessions),
    );
    if let Some(rss) = snapshot.resident_bytes {
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            gauge(rss),
        );
    }
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

/// This process's resident memory, from `/proc/self/statm`.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = rustix::param::page_size() as u64;
    Some(pages * page)
}

/// Bytes of the regular files under `dir`, subdirectories included.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_file() => m.len(),
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            _ => 0,
        })
        .sum()
}
