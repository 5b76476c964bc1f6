//! The configuration as the boss uses it, once read and checked: its types and the built-in
//! defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use gobs_runtime::StoreKind;
use gobs_runtime::store::{Durability, LogOptions};
use serde::Serialize;

use super::default_provider;
use super::hosts;
use super::machines::MachinesConfig;
use super::observe::{EventsConfig, ListenerConfig};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Provider used by `create-machine` without `--provider`; always an enabled provider.
    pub default_provider: String,
    /// How state is stored.
    pub store: StoreConfig,
    /// How the daemon treats its clients.
    pub daemon: DaemonConfig,
    /// Providers by name, enabled or not.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// How long the boss waits for machines' answers.
    pub machines: MachinesConfig,
    /// The event log.
    pub events: EventsConfig,
    /// The Prometheus listener.
    pub metrics: ListenerConfig,
    /// The dashboard's listener.
    pub dashboard: ListenerConfig,
    /// Where the boss listens for host agents.
    pub hosts: hosts::HostsConfig,
}

/// `[store]`: where and how durably the boss keeps its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreConfig {
    /// The store's kind (`store.kind`), with its durability (`store.durability` and the
    /// group limits).
    pub kind: StoreKind,
}

impl StoreConfig {
    /// When a commit is durable.
    pub fn durability(&self) -> Durability {
        self.kind.durability().unwrap_or_default()
    }
}

/// Default for `group_max_commits`.
pub const DEFAULT_GROUP_MAX_COMMITS: u32 = 64;
/// Default for `group_max_delay_ms`.
pub const DEFAULT_GROUP_MAX_DELAY_MS: u64 = 50;

/// `[daemon]`: limits that keep one client from holding the daemon up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DaemonConfig {
    /// A client must send its whole request within this long (`request_timeout`).
    pub request_timeout: Duration,
    /// Connections served at once; more are answered "busy" (`max_connections`).
    pub max_connections: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            request_timeout: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// `[providers.NAME]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderConfig {
    /// A disabled provider is known to the config but cannot create machines.
    pub enabled: bool,
    /// Its kind: the name of its row in [`providers::KINDS`](crate::providers::KINDS).
    pub kind: &'static str,
    /// The kind's own keys, checked by the kind when the config was read.
    pub settings: toml::Table,
}

impl Default for Config {
    fn default() -> Config {
        let mut providers = BTreeMap::new();
        for (name, kind) in [
            ("dummy", "dummy"),
            ("local", "local"),
            ("container", "container"),
            ("qemu", "qemu"),
        ] {
            providers.insert(
                name.to_string(),
                ProviderConfig {
                    enabled: true,
                    kind,
                    settings: toml::Table::new(),
                },
            );
        }
        Config {
            default_provider: "dummy".to_string(),
            store: StoreConfig {
                kind: StoreKind::Log(LogOptions::default()),
            },
            daemon: DaemonConfig::default(),
            providers,
            machines: MachinesConfig::default(),
            events: EventsConfig::default(),
            metrics: ListenerConfig::metrics_default(),
            dashboard: ListenerConfig::dashboard_default(),
            hosts: hosts::HostsConfig::default(),
        }
    }
}

impl Config {
    /// The built-in defaults with the most real default provider this host allows
    /// ([`default_provider::choose`]): the config of a command without a config file.
    pub fn for_this_host() -> Config {
        Config {
            default_provider: default_provider::for_this_host().provider,
            ..Config::default()
        }
    }

    /// Names of the enabled providers, sorted.
    pub fn enabled_providers(&self) -> impl Iterator<Item = (&str, &ProviderConfig)> {
        self.providers
            .iter()
            .filter(|(_, p)| p.enabled)
            .map(|(name, p)| (name.as_str(), p))
    }
}
