//! The config file as written (spans kept where an error must point at a value), and its
//! checks into [`Config`](super::Config).

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use gobs_runtime::StoreKind;
use gobs_runtime::store::{Durability, LogOptions};
use serde::Deserialize;
use toml::Spanned;

use super::human::HumanDuration;
use super::{
    Config, DEFAULT_GROUP_MAX_COMMITS, DEFAULT_GROUP_MAX_DELAY_MS, DaemonConfig, ListenerConfig,
    ProviderConfig, StoreConfig, machines, observe,
};
use crate::providers;

/// The file as written, with spans kept where validation needs to point at a value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    default_provider: Option<Spanned<String>>,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    machines: machines::RawMachines,
    #[serde(default)]
    events: observe::RawEvents,
    #[serde(default)]
    metrics: observe::RawListener,
    #[serde(default)]
    dashboard: observe::RawListener,
    #[serde(default)]
    hosts: super::hosts::RawHosts,
    providers: Option<Spanned<BTreeMap<Spanned<String>, RawProvider>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    kind: Option<KindName>,
    durability: Option<DurabilityName>,
    group_max_commits: Option<Spanned<u32>>,
    group_max_delay_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    request_timeout: Option<Spanned<HumanDuration>>,
    max_connections: Option<Spanned<usize>>,
}

/// `store.kind`: the kind, with the default durability until `[store]` sets it.
#[derive(Deserialize, Clone)]
#[serde(try_from = "String")]
pub(crate) struct KindName(pub(crate) StoreKind);

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(try_from = "String")]
enum DurabilityName {
    EveryCommit,
    Group,
    Buffered,
}

/// The keys every provider has; its kind checks the others (see [`parse`]).
#[derive(Deserialize)]
struct RawProvider {
    kind: Spanned<String>,
    enabled: Option<bool>,
}

/// Reads a string-valued enum, naming the allowed values when the string is not one of
/// them. (Going through `String` also makes a wrong type say "expected a string".)
fn one_of<T: Clone>(what: &str, value: &str, options: &[(&str, T)]) -> Result<T, String> {
    options
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
            format!(
                "unknown {what} {value:?}, expected one of {}",
                names.join(", ")
            )
        })
}

impl TryFrom<String> for KindName {
    type Error = String;
    fn try_from(value: String) -> Result<KindName, String> {
        if value == "file" {
            return Err(
                "store kind \"file\" is no longer offered: gobs-app keeps every actor \
                        in one store; use \"log\" or \"sqlite\" (a state directory written \
                        with \"file\" is migrated into it on first open)"
                    .to_string(),
            );
        }
        let kinds = [
            StoreKind::Log(LogOptions::default()),
            StoreKind::Sqlite(Durability::default()),
        ];
        let named: Vec<(&str, StoreKind)> = kinds.iter().map(|k| (k.name(), k.clone())).collect();
        one_of("store kind", &value, &named).map(KindName)
    }
}

impl TryFrom<String> for DurabilityName {
    type Error = String;
    fn try_from(value: String) -> Result<DurabilityName, String> {
        one_of(
            "durability",
            &value,
            &[
                ("every-commit", DurabilityName::EveryCommit),
                ("group", DurabilityName::Group),
                ("buffered", DurabilityName::Buffered),
            ],
        )
    }
}

pub(super) type Invalid = (Range<usize>, String);

impl RawConfig {
    pub(super) fn into_config(self) -> Result<Config, Invalid> {
        let defaults = Config::default();
        let store = self.store.into_config()?;
        let (providers, providers_span) = match self.providers {
            None => (defaults.providers, None),
            Some(table) => {
                let span = table.span();
                let mut providers = BTreeMap::new();
                for (name, raw) in table.into_inner() {
                    let name_span = name.span();
                    let name = name.into_inner();
                    check_provider_name(&name).map_err(|m| (name_span, m))?;
                    providers.insert(name, raw.into_config()?);
                }
                (providers, Some(span))
            }
        };
        let enabled: Vec<&str> = providers
            .iter()
            .filter(|(_, p)| p.enabled)
            .map(|(n, _)| n.as_str())
            .collect();
        if enabled.is_empty() {
            let span = providers_span.unwrap_or(0..0);
            return Err((
                span,
                "no provider is enabled; add a [providers.NAME] table, or set enabled = true on one"
                    .to_string(),
            ));
        }
        let default_provider = match self.default_provider {
            Some(name) => {
                if !enabled.contains(&name.get_ref().as_str()) {
                    return Err((
                        name.span(),
                        format!(
                            "default_provider = {:?} is not an enabled provider; enabled providers: {}",
                            name.get_ref(),
                            enabled.join(", ")
                        ),
                    ));
                }
                name.into_inner()
            }
            None => {
                if !enabled.contains(&defaults.default_provider.as_str()) {
                    return Err((
                        providers_span.unwrap_or(0..0),
                        format!(
                            "default_provider is not set and the built-in default {:?} is not an \
                             enabled provider; set default_provider to one of: {}",
                            defaults.default_provider,
                            enabled.join(", ")
                        ),
                    ));
                }
                defaults.default_provider
            }
        };
        Ok(Config {
            default_provider,
            store,
            daemon: self.daemon.into_config()?,
            providers,
            machines: self.machines.into_config()?,
            events: self.events.into_config()?,
            metrics: self
                .metrics
                .into_config("metrics", ListenerConfig::metrics_default())?,
            dashboard: self
                .dashboard
                .into_config("dashboard", ListenerConfig::dashboard_default())?,
            hosts: self.hosts.into_config()?,
        })
    }
}

fn check_provider_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "provider name {name:?} must be non-empty and use only ASCII letters, digits, '-' and '_'"
        ))
    }
}

impl RawStore {
    fn into_config(self) -> Result<StoreConfig, Invalid> {
        let durability = match self.durability.unwrap_or(DurabilityName::EveryCommit) {
            DurabilityName::EveryCommit => {
                if let Some(key) = &self.group_max_commits {
                    return Err(only_with_group(key.span(), "group_max_commits"));
                }
                if let Some(key) = &self.group_max_delay_ms {
                    return Err(only_with_group(key.span(), "group_max_delay_ms"));
                }
                Durability::EveryCommit
            }
            DurabilityName::Buffered => {
                if let Some(key) = &self.group_max_commits {
                    return Err(only_with_group(key.span(), "group_max_commits"));
                }
                if let Some(key) = &self.group_max_delay_ms {
                    return Err(only_with_group(key.span(), "group_max_delay_ms"));
                }
                Durability::Buffered
            }
            DurabilityName::Group => {
                let max_commits = match self.group_max_commits {
                    Some(n) if *n.get_ref() == 0 => {
                        return Err((n.span(), "group_max_commits must be at least 1".into()));
                    }
                    Some(n) => n.into_inner(),
                    None => DEFAULT_GROUP_MAX_COMMITS,
                };
                Durability::Group {
                    max_commits,
                    max_delay: Duration::from_millis(
                        self.group_max_delay_ms
                            .map_or(DEFAULT_GROUP_MAX_DELAY_MS, Spanned::into_inner),
                    ),
                }
            }
        };
        let kind = self
            .kind
            .map_or(StoreKind::Log(LogOptions::default()), |k| k.0);
        Ok(StoreConfig {
            kind: kind.with_durability(durability),
        })
    }
}

fn only_with_group(span: Range<usize>, key: &str) -> Invalid {
    (
        span,
        format!(
            "store.{key} only applies with durability = \"group\"; remove it or set durability = \"group\""
        ),
    )
}

impl RawProvider {
    fn into_config(self) -> Result<ProviderConfig, Invalid> {
        let span = self.kind.span();
        let name = self.kind.into_inner();
        let kind = providers::kind(&name).ok_or_else(|| {
            let names: Vec<String> = providers::kind_names()
                .iter()
                .map(|n| format!("{n:?}"))
                .collect();
            (
                span,
                format!(
                    "unknown provider kind {name:?}, expected one of {}",
                    names.join(", ")
                ),
            )
        })?;
        Ok(ProviderConfig {
            enabled: self.enabled.unwrap_or(true),
            kind: kind.name(),
            settings: toml::Table::new(),
        })
    }
}

impl RawDaemon {
    fn into_config(self) -> Result<DaemonConfig, Invalid> {
        let defaults = DaemonConfig::default();
        let request_timeout = match self.request_timeout {
            Some(t) if t.get_ref().0.is_zero() => {
                return Err((
                    t.span(),
                    "daemon.request_timeout must be more than 0s".into(),
                ));
            }
            Some(t) => t.into_inner().0,
            None => defaults.request_timeout,
        };
        let max_connections = match self.max_connections {
            Some(n) if *n.get_ref() == 0 => {
                return Err((n.span(), "daemon.max_connections must be at least 1".into()));
            }
            Some(n) => n.into_inner(),
            None => defaults.max_connections,
        };
        Ok(DaemonConfig {
            request_timeout,
            max_connections,
        })
    }
}
