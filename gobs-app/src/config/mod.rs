//! The config file: its types, built-in defaults, loading, and the commented file `init` writes.
//!
//! Every table denies unknown keys, so a typo is an error, and every error names the file and
//! the line and column it is about. Without a config file the built-in defaults apply
//! ([`Config::default`]), which are exactly what [`DEFAULT_CONFIG_TOML`] says.

pub mod human;
pub mod machines;
pub mod observe;
pub mod state_dir;

use crate::text::floor_char_boundary;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use std::time::Duration;

use gobs_runtime::StoreKind;
use gobs_runtime::store::{Durability, LogOptions};
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::DeTable;

use crate::config::human::HumanDuration;
pub use crate::config::machines::MachinesConfig;
pub use crate::config::observe::{EventsConfig, ListenerConfig};
use crate::providers;

/// The file `gobs-app init` writes. It parses to [`Config::default`].
pub const DEFAULT_CONFIG_TOML: &str = r#"# gobs-app configuration.
#
# gobs-app reads this file from --config FILE, else $GOBS_CONFIG, else
# <state-dir>/config.toml; without any file it uses the values shown here.
# Unknown keys are errors, so a typo cannot go unnoticed.

# Provider used by `create-machine` when --provider is not given.
# It must name an enabled provider below.
default_provider = "dummy"

[store]
# Where the state is kept: one store for every actor, in <state-dir>/vats/:
#   "log"    - registry.log, an append-only, checksummed log (default)
#   "sqlite" - registry.sqlite, a SQLite database (WAL); open it with sqlite3
kind = "log"
# When a commit is durable (fsynced):
#   "every-commit" - before the command that made it returns (default)
#   "group"        - in groups, bounded by the two limits below
#   "buffered"     - never fsynced: survives a killed gobs-app, not a power cut
durability = "every-commit"
# Only with durability = "group":
# group_max_commits = 64
# group_max_delay_ms = 50

[daemon]
# A client must send its whole request within this long (durations are
# written like "10s", "2m", "1h 30m").
request_timeout = "10s"
# Connections served at once; more are answered "busy" (clients retry).
max_connections = 64

[machines]
# A network machine (container, qemu, host: its hob-client runs on the machine)
# must answer a file copy within this long, and `run` within the provider's
# run_timeout plus this long; past it the call fails, naming the machine.
answer_timeout = "30s"

[events]
# How many events (machines' state changes, operators' commands) the log keeps
# in the store; the oldest go first. `gobs-app events` shows them.
retain = 10000

[metrics]
# Serve Prometheus metrics at http://LISTEN/metrics (daemon only).
enabled = false
listen = "127.0.0.1:9464"

[dashboard]
# Serve the web dashboard (daemon only); `gobs-app web` prints its address with
# the access token. Every request needs the token, on loopback too.
enabled = false
listen = "127.0.0.1:9465"

# Providers create machines. Each [providers.NAME] table enables one, named NAME
# (the name `create-machine --provider NAME` takes). Writing any [providers.*]
# table replaces the built-in ones below, so list every provider you want.
# Keys: kind = "dummy" | "local" | "container" | "qemu" | "host"; enabled = true |
# false (default true); and the kind's own keys, shown below.

# In-process machines that do nothing: for trying things out and for tests.
[providers.dummy]
kind = "dummy"
# create_delay = "3s"      # creating a machine takes this long
# fail_prefix = "fail-"    # machines named fail-* fail on purpose ("" for none)

# Each machine is a directory under the state directory with a uid of its own;
# `run` runs commands there, confined: a private mount namespace hides the
# state directory, the daemon's socket and the other machines, and the command
# runs as the machine's uid with a clean environment. Needs gobs-app to run as
# root.
[providers.local]
kind = "local"
# command = "/bin/sh"      # run commands as `/bin/sh -c "CMD..."`
# run_timeout = "1h"       # a command is killed after this long
# uid_base = 1073741824    # machines take random uids in uid_base ..
# uid_count = 1073741824   # .. uid_base+uid_count-1, none a process runs as

# Each machine is a Linux container: its own mount, PID, UTS, IPC, network and
# user namespaces, hostname = the machine's name, a busybox root filesystem of its
# own, memory and process limits (cgroups) and an address on a private bridge.
# Its hob-client registers with the boss over OCapN (tcp-tls); it reaches the
# boss's listener and nothing else (not other machines, not the host's services).
# Needs root and the Debian packages busybox-static, iproute2 and nftables.
[providers.container]
kind = "container"
# busybox = "/bin/busybox"    # from busybox-static
# memory = "256MiB"           # memory limit of each machine
# pids = 512                  # process limit of each machine
# register_timeout = "30s"    # a machine must register within this long
# run_timeout = "1h"          # a command is killed after this long
# hob_listen = "10.213.7.1:0" # the boss's OCapN listener, only on the bridge's
#                             # address; port 0 picks one at the first start
#                             # and keeps it
# subnet = "10.213.7.0/24"    # the bridge's /24 (default: from the state dir)
# bridge = "gobs1a2b3c"       # the bridge's name (default: from the state dir)
# user_namespace = true       # root inside is an unprivileged uid outside
# isolated = true             # false: machines reach each other and the host

# Each machine is a QEMU virtual machine booted from the host's kernel and an
# initramfs gobs-app assembles (busybox, virtio modules, the hob-client); its
# hob-client reaches the boss's listener on loopback through qemu's restricted
# user-mode network, and nothing else of the host. Needs root and the Debian packages qemu-system-x86,
# linux-image-amd64 and busybox-static.
[providers.qemu]
kind = "qemu"
# qemu = "qemu-system-x86_64" # from qemu-system-x86
# kernel = "/boot/vmlinuz-6.1.0-57-amd64"  # default: the newest /boot/vmlinuz-*
# modules = "/lib/modules/6.1.0-57-amd64"  # default: from the kernel's release
# memory = "512MiB"           # memory of each VM
# cpus = 1                    # CPUs of each VM
# accel = "auto"              # "kvm", "tcg", or "auto": KVM if a guest boots
#                             # with it within 20 s, else TCG with a warning
# register_timeout = "90s"    # a machine must register within this long
# run_timeout = "1h"          # a command is killed after this long
# hob_listen = "127.0.0.1:0"  # the boss's OCapN listener, only on loopback,
#                             # where qemu forwards the guest

# Not enabled unless you add it: each machine is a hob-client process on this
# very host, as gobs-app's own user, with NO isolation (run, put-file and get-file
# act on this host's files). The network path without root, for trying it out.
# [providers.host]
# kind = "host"
# register_timeout = "30s"    # a machine must register within this long
# run_timeout = "1h"          # a command is killed after this long
"#;

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
    /// Its kind: the name of its row in [`providers::KINDS`].
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
        }
    }
}

impl Config {
    /// Names of the enabled providers, sorted.
    pub fn enabled_providers(&self) -> impl Iterator<Item = (&str, &ProviderConfig)> {
        self.providers
            .iter()
            .filter(|(_, p)| p.enabled)
            .map(|(name, p)| (name.as_str(), p))
    }
}

/// A config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}; {hint}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// The file is not valid TOML, or not a valid config.
    #[error(
        "invalid config file {}, line {line}, column {column}: {message}\n{snippet}\
         fix the file, or compare it with the one `gobs-app init` writes",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column (in characters) of the problem.
        column: usize,
        /// What is wrong.
        message: String,
        /// The offending line with a caret under the problem, ending in a newline.
        snippet: String,
    },
}

/// Loads the config a command runs with: the `explicit` file if one was named (it must
/// exist), else `state_default` if it exists, else the built-in defaults.
pub fn load_effective(
    explicit: Option<&Path>,
    state_default: &Path,
) -> Result<Config, ConfigError> {
    match explicit {
        Some(path) => load(path),
        None if state_default.exists() => load(state_default),
        None => {
            tracing::debug!(
                "no config file at {}; using built-in defaults",
                state_default.display()
            );
            Ok(Config::default())
        }
    }
}

/// Reads and validates a config file. A file that is not UTF-8 is refused with the line
/// and column of its first bad byte.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    tracing::debug!("reading config file {}", path.display());
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        hint: if source.kind() == io::ErrorKind::NotFound {
            "create it with `gobs-app init`, or name another file with --config / $GOBS_CONFIG"
        } else {
            "check the path and its permissions"
        },
        path: path.to_path_buf(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, path),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes().get(at).copied().unwrap_or_default();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let (line, column, snippet) = locate(&text, at..at + 1);
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: format!(
                    "the file is not UTF-8 text: byte 0x{byte:02x} cannot start or continue a \
                     character (TOML files are UTF-8; re-save it as UTF-8)"
                ),
                snippet,
            })
        }
    }
}

/// Parses and validates config text; `path` is only used in error messages.
///
/// ```
/// use std::path::Path;
/// use gobs_app::config::{parse, Config, DEFAULT_CONFIG_TOML};
///
/// assert_eq!(parse(DEFAULT_CONFIG_TOML, Path::new("config.toml")).unwrap(), Config::default());
/// let err = parse("colour = \"blue\"\n", Path::new("config.toml")).unwrap_err();
/// assert!(err.to_string().contains("line 1, column 1"));
/// ```
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |span: Range<usize>, message: String| {
        let (line, column, snippet) = locate(text, span);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message,
            snippet,
        }
    };
    let toml_error =
        |e: toml::de::Error| invalid(e.span().unwrap_or(0..0), e.message().trim().to_string());
    let raw: RawConfig = toml::from_str(text).map_err(toml_error)?;
    let mut config = raw
        .into_config()
        .map_err(|(span, message)| invalid(span, message))?;
    // Each provider's own keys are checked by its kind, on the parsed document so that
    // errors keep their positions.
    let document = DeTable::parse(text).map_err(toml_error)?;
    for (name, provider) in &mut config.providers {
        let Some(kind) = providers::kind(provider.kind) else {
            continue;
        };
        let table = provider_table(document.get_ref(), name);
        provider.settings = kind
            .check_config(table)
            .map_err(|(span, message)| invalid(span, message))?;
    }
    Ok(config)
}

/// The `[providers.NAME]` table of `document`, without the keys every provider has.
fn provider_table<'i>(document: &DeTable<'i>, name: &str) -> Spanned<DeTable<'i>> {
    let found = document
        .get("providers")
        .and_then(|p| p.get_ref().as_table())
        .and_then(|t| t.get(name))
        .and_then(|v| v.get_ref().as_table().map(|t| (v.span(), t.clone())));
    let (span, table) = found.unwrap_or_else(|| (0..0, DeTable::new()));
    let own: DeTable<'i> = table
        .into_iter()
        .filter(|(key, _)| !matches!(key.get_ref().as_ref(), "kind" | "enabled"))
        .collect();
    Spanned::new(span, own)
}

/// 1-based line and column (in characters) of `span.start`, and a snippet showing it.
fn locate(text: &str, span: Range<usize>) -> (usize, usize, String) {
    let start = floor_char_boundary(text, span.start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let source_line = text[line_start..line_end].trim_end_matches('\r');
    let end = floor_char_boundary(text, span.end.clamp(start, line_end));
    let width = text[start..end].chars().count().max(1);
    let gutter = " ".repeat(line.to_string().len());
    let mut snippet = String::new();
    let _ = writeln!(snippet, "{gutter} |");
    let _ = writeln!(snippet, "{line} | {source_line}");
    let _ = writeln!(
        snippet,
        "{gutter} | {}{}",
        " ".repeat(column - 1),
        "^".repeat(width)
    );
    (line, column, snippet)
}

/// The file as written, with spans kept where validation needs to point at a value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
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

type Invalid = (Range<usize>, String);

impl RawConfig {
    fn into_config(self) -> Result<Config, Invalid> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse_err(text: &str) -> (usize, usize, String) {
        match parse(text, Path::new("/etc/gobs.toml")).unwrap_err() {
            ConfigError::Invalid {
                line,
                column,
                message,
                ..
            } => (line, column, message),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_init_file_parses_to_the_defaults() {
        assert_eq!(
            parse(DEFAULT_CONFIG_TOML, Path::new("x")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(parse("", Path::new("x")).unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let err = parse(
            "default_provider = \"dummy\"\n\n[store]\nknid = \"log\"\n",
            Path::new("/etc/gobs.toml"),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/gobs.toml"), "{msg}");
        assert!(msg.contains("line 4, column 1"), "{msg}");
        assert!(msg.contains("unknown field `knid`"), "{msg}");
        assert!(msg.contains("4 | knid = \"log\""), "{msg}");
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let (line, column, message) = parse_err("[store]\ndurability = 5\n");
        assert_eq!((line, column), (2, 14));
        assert!(message.contains("invalid type: integer `5`"), "{message}");
        assert!(message.contains("expected a string"), "{message}");
    }

    #[test]
    fn unknown_enum_value_is_an_error() {
        let (line, column, message) = parse_err("[providers.x]\nkind = \"cloud\"\n");
        assert_eq!((line, column), (2, 8));
        assert!(
            message.contains(r#"unknown provider kind "cloud", expected one of "dummy", "local""#),
            "{message}"
        );
    }

    #[test]
    fn default_provider_must_be_enabled_and_the_error_lists_them() {
        let (line, column, message) = parse_err("default_provider = \"aws\"\n");
        assert_eq!((line, column), (1, 20));
        assert!(
            message.contains("enabled providers: container, dummy, local, qemu"),
            "{message}"
        );

        let (_, _, message) = parse_err(
            "default_provider = \"local\"\n[providers.local]\nkind = \"process\"\nenabled = false\n[providers.d]\nkind = \"dummy\"\n",
        );
        assert!(message.contains("enabled providers: d"), "{message}");
    }

    #[test]
    fn replacing_providers_without_dummy_needs_a_default() {
        let (_, _, message) = parse_err("[providers.local]\nkind = \"process\"\n");
        assert!(
            message.contains("set default_provider to one of: local"),
            "{message}"
        );
        let config = parse(
            "default_provider = \"local\"\n[providers.local]\nkind = \"process\"\ncommand = \"/bin/sh\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(config.providers.len(), 1);
        // `process` is the local kind's earlier name.
        assert_eq!(config.providers["local"].kind, "local");
        assert_eq!(
            config.providers["local"].settings["command"].as_str(),
            Some("/bin/sh")
        );
    }

    #[test]
    fn each_kind_checks_its_own_keys_with_positions() {
        let (line, column, message) = parse_err(
            "default_provider = \"local\"\n[providers.local]\nkind = \"local\"\nrun_timeout = \"forever\"\n",
        );
        assert_eq!((line, column), (4, 15), "{message}");
        assert!(message.contains("is not a duration"), "{message}");
        let (line, _, message) = parse_err(
            "default_provider = \"local\"\n[providers.local]\nkind = \"local\"\nuid_bsae = 5\n",
        );
        assert_eq!(line, 4);
        assert!(message.contains("unknown field `uid_bsae`"), "{message}");
        let config = parse(
            "[providers.slow]\nkind = \"dummy\"\ncreate_delay = \"1m 30s\"\n[providers.dummy]\nkind = \"dummy\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(
            config.providers["slow"].settings["create_delay"].as_str(),
            Some("1m 30s")
        );
    }

    #[test]
    fn a_kinds_own_rules_are_checked_when_reading() {
        let (line, _, message) = parse_err(
            "default_provider = \"local\"\n[providers.local]\nkind = \"local\"\nuid_count = 0\n",
        );
        assert_eq!(line, 2, "{message}");
        assert!(
            message.contains("uid_count must be at least 1"),
            "{message}"
        );
    }

    #[test]
    fn daemon_limits_read_durations() {
        let config = parse("[daemon]\nrequest_timeout = \"2m\"\n", Path::new("x")).unwrap();
        assert_eq!(config.daemon.request_timeout, Duration::from_secs(120));
        let (line, _, message) = parse_err("[daemon]\nmax_connections = 0\n");
        assert_eq!(line, 2);
        assert!(message.contains("at least 1"), "{message}");
    }

    #[test]
    fn a_file_that_is_not_utf8_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, b"[store]\nkind = \"l\xffog\"\n").unwrap();
        match load(&path).unwrap_err() {
            ConfigError::Invalid {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!((line, column), (2, 10));
                assert!(message.contains("not UTF-8"), "{message}");
                assert!(message.contains("0xff"), "{message}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn no_enabled_provider_is_an_error() {
        let (_, _, message) = parse_err("[providers.dummy]\nkind = \"dummy\"\nenabled = false\n");
        assert!(message.contains("no provider is enabled"), "{message}");
    }

    #[test]
    fn group_limits_need_group_durability() {
        let (line, _, message) = parse_err("[store]\ngroup_max_commits = 8\n");
        assert_eq!(line, 2);
        assert!(message.contains("durability = \"group\""), "{message}");
        let config = parse(
            "[store]\nkind = \"sqlite\"\ndurability = \"group\"\ngroup_max_delay_ms = 5\n",
            Path::new("x"),
        )
        .unwrap();
        let group = Durability::Group {
            max_commits: DEFAULT_GROUP_MAX_COMMITS,
            max_delay: Duration::from_millis(5),
        };
        assert_eq!(config.store.kind, StoreKind::Sqlite(group));
        assert_eq!(config.store.durability(), group);
        let (_, _, message) = parse_err("[store]\ndurability = \"group\"\ngroup_max_commits = 0\n");
        assert!(message.contains("at least 1"), "{message}");
    }

    #[test]
    fn command_is_only_for_local_providers() {
        let (line, _, message) =
            parse_err("[providers.dummy]\nkind = \"dummy\"\ncommand = \"/bin/sh\"\n");
        assert_eq!(line, 3);
        assert!(message.contains("unknown field `command`"), "{message}");
    }

    #[test]
    fn provider_names_are_checked() {
        let (line, _, message) = parse_err("[providers.\"my dummy\"]\nkind = \"dummy\"\n");
        assert_eq!(line, 1);
        assert!(message.contains("my dummy"), "{message}");
    }

    #[test]
    fn syntax_errors_have_a_location_too() {
        let (line, column, _) = parse_err("a = 1\nb = = 2\n");
        assert_eq!(line, 2);
        assert!(column > 1);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let (line, column, _) = parse_err("# é\n[store]\nkind = 1\n");
        assert_eq!((line, column), (3, 8));
        let (_, column, _) = parse_err("[providers.é]\nkind = \"dummy\"\n");
        assert_eq!(column, 12);
    }

    #[test]
    fn a_missing_explicit_file_is_an_error_but_a_missing_default_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = load_effective(Some(&missing), &missing).unwrap_err();
        assert!(err.to_string().contains("gobs-app init"), "{err}");
        assert_eq!(load_effective(None, &missing).unwrap(), Config::default());
    }
}
