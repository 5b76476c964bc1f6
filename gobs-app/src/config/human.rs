//! [`HumanDuration`]: a duration as people write it in the config (`"90s"`, `"15m"`,
//! `"1h 30m"`), read with humantime.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the humantime way.
///
/// ```
/// use gobs_app::config::human::HumanDuration;
/// let d: HumanDuration = "1m 30s".parse().unwrap();
/// assert_eq!(d.0.as_secs(), 90);
/// assert_eq!(d.to_string(), "1m 30s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(text: &str) -> Result<HumanDuration, String> {
        humantime::parse_duration(text)
            .map(HumanDuration)
            .map_err(|e| {
                format!(
                    "{text:?} is not a duration ({e}); write it like \"90s\", \"15m\" or \"1h 30m\""
                )
            })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HumanDuration, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
