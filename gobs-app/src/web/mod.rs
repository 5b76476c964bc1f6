//! The daemon's HTTP side, on the tokio already in gobs-app (one thread of its own):
//!
//! - `[metrics]`: `GET /metrics`, Prometheus text ([`crate::metrics`]); no secrets in it,
//!   and on loopback unless configured otherwise.
//! - `[dashboard]`: a server-rendered page of the machines and their history, updated live
//!   by server-sent events, with create and destroy actions ([`dashboard`]); every request
//!   needs the access token ([`auth`]).
//!
//! Both are off unless enabled, and only the daemon serves them. `gobs-app web` asks the
//! daemon where they listen ([`WebAccess`]).

pub mod access;
pub mod auth;
pub mod dashboard;
pub mod observer;
pub mod page;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::Backend;
use crate::config::{Config, ListenerConfig};
use crate::error::AppError;
use crate::metrics;
use crate::web::access::{AccessCell, WebAccess};
use crate::web::observer::Observer;
use axum::Router;
use axum::routing::get;

/// The backend the daemon serves, shared with the dashboard's actions.
pub type SharedBackend = Arc<RwLock<Box<dyn Backend + Send + Sync>>>;

/// The running HTTP side; stops when dropped.
#[derive(Debug)]
pub struct WebServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn bind(what: &str, config: &ListenerConfig) -> Result<(TcpListener, SocketAddr), AppError> {
    let listener = TcpListener::bind(config.listen).map_err(|source| AppError::Listen {
        what: what.to_string(),
        addr: config.listen,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .and_then(|()| listener.local_addr())
        .map(|addr| (listener, addr))
        .map_err(|source| AppError::Listen {
            what: what.to_string(),
            addr: config.listen,
            source,
        })
}

impl WebServer {
    /// Binds the enabled listeners of `config` and serves them on a thread of their own;
    /// `None` if none is enabled. Where they listen goes into `access`.
    pub fn start(
        config: &Config,
        observer: Observer,
        backend: SharedBackend,
        access: &AccessCell,
    ) -> Result<Option<WebServer>, AppError> {
        let mut routers = Vec::new();
        let mut found = WebAccess::default();
        if config.metrics.enabled {
            let (listener, addr) = bind("metrics", &config.metrics)?;
            found.metrics = Some(format!("http://{addr}/metrics"));
            let router = Router::new()
                .route("/metrics", get(scrape))
                .with_state(observer.clone());
            routers.push((listener, router));
        }
        if config.dashboard.enabled {
            let (listener, addr) = bind("dashboard", &config.dashboard)?;
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    "the dashboard listens on {addr}, beyond loopback: its token and pages \
                     travel unencrypted; prefer loopback and an SSH tunnel"
                );
            }
            let secrets = auth::Access::new(addr).map_err(|e| AppError::Listen {
                what: "dashboard".into(),
                addr,
                source: std::io::Error::other(format!("cannot make its access token: {e}")),
            })?;
            found.dashboard = Some(format!("http://{addr}/login?token={}", secrets.token()));
            let router = dashboard::router(dashboard::Dashboard::new(observer, backend, secrets));
            routers.push((listener, router));
        }
        if routers.is_empty() {
            let _ = access.set(found);
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(AppError::Runtime)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut served = Vec::new();
        for (listener, router) in routers {
            let listener = {
                let _entered = runtime.enter();
                tokio::net::TcpListener::from_std(listener).map_err(AppError::Runtime)?
            };
            served.push(async move { axum::serve(listener, router).await });
        }
        let thread = std::thread::Builder::new()
            .name("gobs-web".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let all = futures_util::future::join_all(served);
                    tokio::select! {
                        results = all => {
                            for result in results {
                                if let Err(e) = result {
                                    tracing::error!("the HTTP side stopped: {e}");
                                }
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Open connections (live updates never end by themselves) are dropped.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(AppError::Runtime)?;
        for url in [&found.metrics, &found.dashboard].into_iter().flatten() {
            tracing::info!("serving {}", url.split("?token=").next().unwrap_or(url));
        }
        let _ = access.set(found);
        Ok(Some(WebServer {
            stop: Some(stop),
            thread: Some(thread),
        }))
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `GET /metrics`.
async fn scrape(
    axum::extract::State(observer): axum::extract::State<Observer>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match observer.snapshot().await {
        Ok(snapshot) => (
            [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&snapshot),
        )
            .into_response(),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the figures: {e}\n"),
        )
            .into_response(),
    }
}
