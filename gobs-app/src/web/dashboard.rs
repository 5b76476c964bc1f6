//! The dashboard's routes:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /login?token=T` | keeps the token in a cookie, then to `/` |
//! | `GET /` | the page ([`crate::web::page`]) |
//! | `GET /machines` | the machines' part of the page (what live updates re-fetch) |
//! | `GET /events` | server-sent events: each new event as it is logged |
//! | `POST /machines` | create (`{"name":…,"provider":…}`); an action |
//! | `POST /machines/{name}/destroy` | destroy; an action |
//!
//! Everything needs the token and actions the CSRF checks ([`crate::web::auth`]). Actions
//! run on the backend the control socket uses, recorded in the event log as the
//! `dashboard` operator. Live streams and running actions are bounded in number.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::events::audit::{self, Operator};
use crate::events::{Event, EventQuery, PAGE_EVENTS};
use crate::model::{BackendError, Cancel, ErrorKind, MachineName};
use crate::ops::{Request, Response as OpResponse};
use crate::web::SharedBackend;
use crate::web::auth::Access;
use crate::web::observer::Observer;
use crate::web::page;

/// Live streams open at once.
pub const MAX_STREAMS: usize = 32;
/// Actions running at once.
pub const MAX_ACTIONS: usize = 8;

/// What the routes share.
#[derive(Clone)]
pub struct Dashboard {
    observer: Observer,
    backend: SharedBackend,
    access: Arc<Access>,
    streams: Arc<Semaphore>,
    actions: Arc<Semaphore>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("observer", &self.observer)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// The dashboard of `observer`'s boss, acting through `backend`, guarded by `access`.
    pub fn new(observer: Observer, backend: SharedBackend, access: Access) -> Dashboard {
        Dashboard {
            observer,
            backend,
            access: Arc::new(access),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            actions: Arc::new(Semaphore::new(MAX_ACTIONS)),
        }
    }

    /// The events of the page: the newest [`PAGE_EVENTS`].
    async fn recent_events(&self) -> Result<Vec<Event>, BackendError> {
        let last = self.observer.last_seq().await?;
        let query = EventQuery {
            machine: None,
            after: last.saturating_sub(PAGE_EVENTS as u64),
        };
        Ok(self.observer.events(query).await?.events)
    }
}

/// The dashboard's router.
pub fn router(dashboard: Dashboard) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/", get(index))
        .route("/machines", get(machines).post(create))
        .route("/machines/{name}/destroy", post(destroy))
        .route("/events", get(stream))
        .with_state(dashboard)
}

fn failed(e: &BackendError) -> Response {
    let status = match e.kind {
        ErrorKind::InvalidRequest | ErrorKind::UnknownProvider => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists => StatusCode::CONFLICT,
        ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("{e}\n")).into_response()
}

async fn login(State(d): State<Dashboard>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(refused) = d.access.check_host(&headers) {
        return refused.into_response();
    }
    let token = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="));
    match token {
        Some(token) if d.access.is_token(token) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_string()),
                (header::SET_COOKIE, d.access.cookie()),
            ],
        )
            .into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            "wrong or missing token: run `gobs-app web` for the current address (a new \
             daemon makes a new token)\n",
        )
            .into_response(),
    }
}

async fn index(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if let Err(refused) = d.access.check(&headers) {
        return refused.into_response();
    }
    let read = async {
        let machines = d.observer.machines().await?;
        let providers = d.observer.providers().await?;
        let events = d.recent_events().await?;
        Ok::<_, BackendError>(page::index(&machines, &providers, &events, d.access.csrf()))
    };
    match read.await {
        Ok(html) => Html(html).into_response(),
        Err(e) => failed(&e),
    }
}

async fn machines(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if let Err(refused) = d.access.check(&headers) {
        return refused.into_response();
    }
    let read = async {
        let machines = d.observer.machines().await?;
        let events = d.recent_events().await?;
        Ok::<_, BackendError>(page::machines_fragment(&machines, &events))
    };
    match read.await {
        Ok(html) => Html(html).into_response(),
        Err(e) => failed(&e),
    }
}

/// Runs `request` on the backend, off the async thread, as the dashboard operator.
async fn act(d: &Dashboard, request: Request) -> Response {
    let Ok(_permit) = d.actions.clone().try_acquire_owned() else {
        return failed(&BackendError::new(
            ErrorKind::Busy,
            format!("{MAX_ACTIONS} actions are running; try again when one is done"),
        ));
    };
    let backend = Arc::clone(&d.backend);
    let ran = tokio::task::spawn_blocking(move || match backend.read() {
        Ok(backend) => audit::execute(request, &**backend, &Cancel::new(), &Operator::Dashboard),
        Err(_) => OpResponse::Error(BackendError::internal(
            "the daemon's backend crashed on an earlier request; restart the daemon",
        )),
    })
    .await;
    match ran {
        Ok(OpResponse::Error(e)) => failed(&e),
        Ok(answer) => match answer.data_json() {
            Ok(json) => (
                [(header::CONTENT_TYPE, "application/json")],
                json.to_string(),
            )
                .into_response(),
            Err(e) => failed(&BackendError::internal(e.to_string())),
        },
        Err(e) => failed(&BackendError::internal(format!("the action stopped: {e}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateForm {
    name: String,
    provider: Option<String>,
}

async fn create(State(d): State<Dashboard>, headers: HeaderMap, body: String) -> Response {
    if let Err(refused) = d.access.check_action(&headers) {
        return refused.into_response();
    }
    let form: CreateForm = match serde_json::from_str(&body) {
        Ok(form) => form,
        Err(e) => {
            return failed(&BackendError::invalid(format!(
                "the create request is not {{\"name\":…,\"provider\":…}}: {e}"
            )));
        }
    };
    let name = match MachineName::new(form.name) {
        Ok(name) => name,
        Err(e) => return failed(&e),
    };
    let provider = form.provider.filter(|p| !p.is_empty());
    act(
        &d,
        Request::CreateMachine {
            name,
            provider,
            host: None,
            progress: Default::default(),
        },
    )
    .await
}

async fn destroy(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(refused) = d.access.check_action(&headers) {
        return refused.into_response();
    }
    match MachineName::new(name) {
        Ok(name) => {
            let progress = Default::default();
            act(&d, Request::DestroyMachine { name, progress }).await
        }
        Err(e) => failed(&e),
    }
}

/// What a live stream holds between two events.
struct Live {
    observer: Observer,
    after: u64,
    ready: VecDeque<Event>,
    _permit: OwnedSemaphorePermit,
}

/// The next event of a live stream, waiting (woken by the log) until there is one.
async fn next_event(mut live: Live) -> Option<(Result<SseEvent, Infallible>, Live)> {
    loop {
        if let Some(event) = live.ready.pop_front() {
            let data = serde_json::json!({ "event": &event, "text": event.to_string() });
            let sse = SseEvent::default()
                .id(event.seq.to_string())
                .data(data.to_string());
            return Some((Ok(sse), live));
        }
        // An error (the boss stopping) ends the stream; the browser reconnects.
        live.observer.wait_after(live.after).await.ok()?;
        let query = EventQuery {
            machine: None,
            after: live.after,
        };
        let page = live.observer.events(query).await.ok()?;
        live.after = page.next;
        live.ready.extend(page.events);
    }
}

async fn stream(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    if let Err(refused) = d.access.check(&headers) {
        return refused.into_response();
    }
    let Ok(permit) = d.streams.clone().try_acquire_owned() else {
        return failed(&BackendError::new(
            ErrorKind::Busy,
            format!("{MAX_STREAMS} live updates are open; close a dashboard tab"),
        ));
    };
    // A browser that reconnects says where it was; a new one starts from now.
    let resumed = headers
        .get("last-event-id")
        .and_then(|h| h.to_str().ok())
        .and_then(|id| id.parse().ok());
    let after = match resumed {
        Some(after) => after,
        None => match d.observer.last_seq().await {
            Ok(last) => last,
            Err(e) => return failed(&e),
        },
    };
    let live = Live {
        observer: d.observer.clone(),
        after,
        ready: VecDeque::new(),
        _permit: permit,
    };
    Sse::new(futures_util::stream::unfold(live, next_event))
        .keep_alive(KeepAlive::default())
        .into_response()
}
