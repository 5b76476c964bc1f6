//! The config of what operators watch: `[events]` (the event log's retention), `[metrics]`
//! (the Prometheus listener) and `[dashboard]` (the web page). Both listeners are off
//! unless enabled, and listen on loopback unless told otherwise.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::events::DEFAULT_RETAIN;

/// Most events `[events] retain` may keep. The daemon holds them in memory, about 1 KB
/// each (measured: 15,000 events added 14 MB of resident memory), so this bounds it near
/// 100 MB.
pub const MAX_RETAIN: u64 = 100_000;

/// `[events]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventsConfig {
    /// How many events the log keeps; the oldest go first (`retain`).
    pub retain: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            retain: DEFAULT_RETAIN,
        }
    }
}

/// `[metrics]` or `[dashboard]`: an HTTP listener of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ListenerConfig {
    /// Whether the daemon serves it (`enabled`, default false).
    pub enabled: bool,
    /// Where (`listen`; port 0 picks a free port, which `gobs-app web` shows).
    pub listen: SocketAddr,
}

/// The default `[metrics] listen`.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// The default `[dashboard] listen`.
pub const DEFAULT_DASHBOARD_LISTEN: &str = "127.0.0.1:9465";

impl ListenerConfig {
    fn off(listen: &str) -> ListenerConfig {
        ListenerConfig {
            enabled: false,
            listen: listen
                .parse()
                .unwrap_or_else(|_| ([127, 0, 0, 1], 0).into()),
        }
    }

    /// `[metrics]` by default: off, on loopback.
    pub fn metrics_default() -> ListenerConfig {
        ListenerConfig::off(DEFAULT_METRICS_LISTEN)
    }

    /// `[dashboard]` by default: off, on loopback.
    pub fn dashboard_default() -> ListenerConfig {
        ListenerConfig::off(DEFAULT_DASHBOARD_LISTEN)
    }
}

type Invalid = (std::ops::Range<usize>, String);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    retain: Option<Spanned<u64>>,
}

impl RawEvents {
    pub(super) fn into_config(self) -> Result<EventsConfig, Invalid> {
        match self.retain {
            None => Ok(EventsConfig::default()),
            Some(n) if !(1..=MAX_RETAIN).contains(n.get_ref()) => Err((
                n.span(),
                format!("events.retain must be between 1 and {MAX_RETAIN}"),
            )),
            Some(n) => Ok(EventsConfig {
                retain: n.into_inner(),
            }),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    enabled: Option<bool>,
    listen: Option<Spanned<String>>,
}

impl RawListener {
    pub(super) fn into_config(
        self,
        section: &str,
        default: ListenerConfig,
    ) -> Result<ListenerConfig, Invalid> {
        let listen = match self.listen {
            None => default.listen,
            Some(text) => text.get_ref().parse().map_err(|e| {
                (
                    text.span(),
                    format!(
                        "{section}.listen = {:?} is not an address and port ({e}); write it \
                         like \"127.0.0.1:9464\"",
                        text.get_ref()
                    ),
                )
            })?,
        };
        Ok(ListenerConfig {
            enabled: self.enabled.unwrap_or(default.enabled),
            listen,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use crate::config::{ConfigError, parse};

    fn message(text: &str) -> String {
        match parse(text, Path::new("c.toml")).unwrap_err() {
            ConfigError::Invalid { message, .. } => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn listeners_are_off_and_on_loopback_unless_told() {
        let config = parse("", Path::new("c.toml")).unwrap();
        assert!(!config.metrics.enabled && !config.dashboard.enabled);
        assert!(config.metrics.listen.ip().is_loopback());
        assert!(config.dashboard.listen.ip().is_loopback());
        assert_eq!(config.events.retain, 10_000);
        let config = parse(
            "[metrics]\nenabled = true\nlisten = \"127.0.0.1:0\"\n[events]\nretain = 5\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(config.metrics.enabled);
        assert_eq!(config.metrics.listen.port(), 0);
        assert_eq!(config.events.retain, 5);
    }

    #[test]
    fn bad_values_say_what_to_write() {
        assert!(message("[events]\nretain = 0\n").contains("between 1 and"));
        let m = message("[dashboard]\nlisten = \"localhost\"\n");
        assert!(
            m.contains("dashboard.listen") && m.contains("127.0.0.1:9464"),
            "{m}"
        );
        assert!(message("[metrics]\nport = 1\n").contains("unknown field"));
    }
}
