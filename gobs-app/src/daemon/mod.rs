//! `gobs-app daemon`: keeps the backend open and serves it on a Unix control socket.
//!
//! Start-up: install SIGINT/SIGTERM handling; take `daemon.lock`, which only daemons take,
//! so a second daemon is refused at once, naming the first one's pid; take the state lock
//! (`state.lock`), waiting up to [`LOCK_WAIT`](startup::LOCK_WAIT) for a command that has the state open; open
//! the backend; recover a stale socket left by a killed daemon; bind `daemon.sock` with
//! mode 0600. Binding happens under a temporary name that is chmod-ed and then renamed
//! into place, so the socket is never reachable with looser permissions.
//!
//! Serving: each connection gets a thread, at most `max_connections` at once (more are
//! answered `busy`, and clients retry); each request frame must arrive whole within
//! `request_timeout` and be at most [`MAX_REQUEST_BYTES`](protocol::MAX_REQUEST_BYTES)
//! long; a request whose client goes away is cancelled ([`connection`] says how memory
//! stays bounded).
//!
//! Shutdown (a signal, or [`Stopper::stop`]): stop accepting, remove the socket, let the
//! connections in progress finish, close the backend, release the locks.
//!
//! One concern a file: [`startup`] (taking the locks), [`server`] (the socket and the
//! accept loop), [`connection`] (one client's requests), `hangup` (noticing a client that
//! went away), [`protocol`] (the frames), [`stream`] (a streamed `run`), [`progress`] (the
//! steps of a request that asks for them), [`lock`] (the lock files) and [`holder`] (who
//! holds one), and [`find`] (how a command finds the daemon, or takes the state itself).

pub mod connection;
pub mod find;
mod hangup;
pub mod holder;
pub mod lock;
pub mod progress;
pub mod protocol;
pub mod server;
pub mod startup;
pub mod stream;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::backend::boss::BossBackend;
use crate::config::load_effective;
use crate::config::state_dir::StatePaths;
use crate::daemon::server::{Daemon, Stopper};
use crate::daemon::startup::lock_state;
use crate::error::AppError;
use crate::web::{SharedBackend, WebServer};

/// Runs the daemon in the foreground until SIGINT or SIGTERM.
pub fn run(paths: &StatePaths, explicit_config: Option<&Path>) -> Result<(), AppError> {
    run_with(paths, explicit_config, |_, _| Ok(Box::new(())))
}

/// What a daemon serves beside its socket (a host agent's node), kept until it stops.
pub type Beside = Box<dyn std::any::Any>;

/// [`run`], with `beside` started once the backend is open (before the socket is bound)
/// and kept until the daemon stops.
pub fn run_with(
    paths: &StatePaths,
    explicit_config: Option<&Path>,
    beside: impl FnOnce(&BossBackend, &crate::config::Config) -> Result<Beside, AppError>,
) -> Result<(), AppError> {
    let stopper = Stopper::new(paths.socket());
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(AppError::Signals)?;
    let handle = signals.handle();
    let on_signal = stopper.clone();
    let signal_thread = thread::Builder::new()
        .name("gobs-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                tracing::info!("received {name}, shutting down");
                on_signal.stop();
            }
        })
        .map_err(AppError::Signals)?;

    let result = (|| {
        let locks = lock_state(paths, || stopper.is_stopped())?;
        let config = load_effective(explicit_config, &paths.default_config())?;
        let backend = BossBackend::open(&paths.dir, &config)?;
        let _beside = beside(&backend, &config)?;
        let (observer, access) = (backend.observer(), backend.web_access());
        let mut daemon = Daemon::bind(paths, locks, stopper.clone(), config.daemon)?;
        let backend: SharedBackend = Arc::new(RwLock::new(Box::new(backend)));
        daemon.set_web(WebServer::start(
            &config,
            observer,
            Arc::clone(&backend),
            &access,
        )?);
        eprintln!(
            "gobs-app daemon (pid {}) serving {}; stop it with Ctrl-C or `kill {}`",
            std::process::id(),
            daemon.socket().display(),
            std::process::id()
        );
        daemon.serve_shared(backend)
    })();

    handle.close();
    let _ = signal_thread.join();
    if result.is_ok() {
        eprintln!("gobs-app daemon stopped");
    }
    result
}
