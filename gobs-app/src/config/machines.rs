//! The config's `[machines]`: how long the boss waits for a network machine's answer (a
//! container's, a VM's, a host machine's hob-client), whatever that machine does. See
//! [`crate::hob_net::answers`] for what else the boss checks of an answer.

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::human::HumanDuration;
use crate::hob_net::answers::DEFAULT_ANSWER_TIMEOUT;

/// `[machines]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MachinesConfig {
    /// How long a machine may take to answer a file copy, and to answer `run` beyond the
    /// command's own `run_timeout` (`answer_timeout`).
    pub answer_timeout: Duration,
}

impl Default for MachinesConfig {
    fn default() -> Self {
        MachinesConfig {
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
        }
    }
}

/// `[machines]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMachines {
    answer_timeout: Option<Spanned<HumanDuration>>,
}

impl RawMachines {
    pub(crate) fn into_config(self) -> Result<MachinesConfig, (Range<usize>, String)> {
        let answer_timeout = match self.answer_timeout {
            Some(t) if t.get_ref().0.is_zero() => {
                return Err((
                    t.span(),
                    "machines.answer_timeout must be more than 0s".into(),
                ));
            }
            Some(t) => t.into_inner().0,
            None => MachinesConfig::default().answer_timeout,
        };
        Ok(MachinesConfig { answer_timeout })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use crate::config::{ConfigError, parse};

    #[test]
    fn answer_timeout_is_read_and_must_be_positive() {
        let config = parse("[machines]\nanswer_timeout = \"5s\"\n", Path::new("c")).unwrap();
        assert_eq!(config.machines.answer_timeout.as_secs(), 5);
        match parse("[machines]\nanswer_timeout = \"0s\"\n", Path::new("c")).unwrap_err() {
            ConfigError::Invalid { line, message, .. } => {
                assert_eq!(line, 2);
                assert_eq!(message, "machines.answer_timeout must be more than 0s");
            }
            other => panic!("{other:?}"),
        }
        let err = parse("[machines]\ntimeout = \"5s\"\n", Path::new("c")).unwrap_err();
        assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
    }
}
