//! What the tests of the daemon's HTTP side share: a daemon with metrics and the dashboard
//! on free loopback ports, where `gobs-app web` says they are, and an HTTP client that
//! reports statuses instead of failing on them.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::Path;

use crate::common::{Daemon, ok};

/// Enables both listeners on port 0 (free ports, so parallel tests never collide).
pub const CONFIG: &str = "[metrics]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\n\
[dashboard]\nenabled = true\nlisten = \"127.0.0.1:0\"\n";

/// A daemon serving both, and where.
pub struct Served {
    pub daemon: Daemon,
    pub metrics: String,
    /// The login address, token included.
    pub login: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub token: String,
}

pub fn serve(state: &Path) -> Served {
    std::fs::write(state.join("config.toml"), CONFIG).unwrap();
    serve_with_config(state)
}

/// A daemon on `state`, whose config enables both listeners.
pub fn serve_with_config(state: &Path) -> Served {
    let daemon = Daemon::start(state);
    let web: serde_json::Value = serde_json::from_str(&ok(state, &["web", "--json"])).unwrap();
    let login = web["dashboard"].as_str().unwrap().to_string();
    let (base, token) = login.split_once("/login?token=").unwrap();
    Served {
        daemon,
        metrics: web["metrics"].as_str().unwrap().to_string(),
        base: base.to_string(),
        token: token.to_string(),
        login: login.clone(),
    }
}

/// An HTTP client that follows no redirects and treats every status as an answer.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}
