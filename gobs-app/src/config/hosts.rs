//! The config's `[hosts]`: where the boss listens for host agents (`gobs-app agent`), and
//! the address its enrolment URIs name. Loopback by default, so a boss is reachable from
//! other hosts only once its operator says where.

use std::net::SocketAddr;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[hosts]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostsConfig {
    /// Where the boss listens for agents (`listen`; port 0: one picked at the first
    /// start, then kept, since enrolment URIs and agents' references name it).
    pub listen: SocketAddr,
    /// The host agents dial, written into enrolment URIs (`public_host`; default: the
    /// address listened on).
    pub public_host: Option<String>,
}

impl Default for HostsConfig {
    fn default() -> Self {
        HostsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_host: None,
        }
    }
}

/// `[hosts]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHosts {
    listen: Option<Spanned<String>>,
    public_host: Option<Spanned<String>>,
}

impl RawHosts {
    pub(crate) fn into_config(self) -> Result<HostsConfig, (Range<usize>, String)> {
        let span = self.listen.as_ref().map_or(0..0, Spanned::span);
        let listen = match self.listen {
            None => HostsConfig::default().listen,
            Some(text) => text.get_ref().parse().map_err(|e| {
                (
                    text.span(),
                    format!(
                        "hosts.listen = {:?} is not an address and port ({e}); write it like \
                         \"192.0.2.10:7300\"",
                        text.get_ref()
                    ),
                )
            })?,
        };
        let public_host = match self.public_host {
            Some(host) if host.get_ref().trim().is_empty() => {
                return Err((host.span(), "hosts.public_host must not be empty".into()));
            }
            Some(host) => Some(host.into_inner()),
            None if listen.ip().is_unspecified() => {
                return Err((
                    span,
                    format!(
                        "hosts.listen = \"{listen}\" listens on every address: set \
                         hosts.public_host to the address agents dial"
                    ),
                ));
            }
            None => None,
        };
        Ok(HostsConfig {
            listen,
            public_host,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use crate::config::{ConfigError, parse};

    #[test]
    fn agents_are_listened_for_on_loopback_unless_told() {
        let config = parse("", Path::new("c.toml")).unwrap();
        assert_eq!(config.hosts.listen.to_string(), "127.0.0.1:0");
        let config = parse(
            "[hosts]\nlisten = \"0.0.0.0:7300\"\npublic_host = \"boss.example\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(config.hosts.listen.port(), 7300);
        assert_eq!(config.hosts.public_host.as_deref(), Some("boss.example"));
    }

    #[test]
    fn every_address_needs_the_address_agents_dial() {
        let err = parse("[hosts]\nlisten = \"0.0.0.0:7300\"\n", Path::new("c.toml")).unwrap_err();
        let ConfigError::Invalid { message, .. } = err else {
            panic!("{err:?}");
        };
        assert!(message.contains("hosts.public_host"), "{message}");
    }
}
