//! Where the daemon's HTTP side listens: what `gobs-app web` asks the daemon and prints. A
//! type of its own, below both the operations that answer it and the server that fills it.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

/// Where the daemon's HTTP side listens (what `gobs-app web` prints).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAccess {
    /// The metrics' address (`http://127.0.0.1:9464/metrics`), if served.
    pub metrics: Option<String>,
    /// The dashboard's login address, token included, if served.
    pub dashboard: Option<String>,
}

/// The [`WebAccess`] of a daemon, once its listeners are bound (shared with the backend,
/// which answers `gobs-app web` with it).
pub type AccessCell = Arc<OnceLock<WebAccess>>;
