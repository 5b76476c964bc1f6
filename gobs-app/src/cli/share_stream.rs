//! The holder's side of a share: dialling its URI ([`ShareLink::dial`]), whole calls, and
//! the streams of [`crate::shares::stream`] (a `run` streamed both ways, copies of any
//! size), with the same request, input and output a daemon's streamed request has.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use gobs_ocapn::captp::SessionConfig;
use gobs_ocapn::netlayer::{Netlayer, TcpTls};
use gobs_ocapn::node::Node;
use gobs_runtime::{Promise, Ref};
use serde_bytes::ByteBuf;

use crate::error::AppError;
use crate::hosts::link::Driven;
use crate::model::{BackendError, ErrorKind};
use crate::ops::{Request, Response};
use crate::run_io::Stream;
use crate::shares::saved::Grant;
use crate::shares::stream::MAX_INPUT;

/// How long dialling a share may take.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(60);

/// A share dialled with a node of this process's own.
pub struct ShareLink {
    uri: String,
    runtime: Driven,
    // Kept so that its sessions stay open while the link is used.
    _node: Node,
    grant: Ref<Grant>,
}

impl ShareLink {
    /// Dials the share at `uri`.
    pub fn dial(uri: &str) -> Result<ShareLink, AppError> {
        let runtime = Driven::start().map_err(|e| error(ErrorKind::Internal, e))?;
        let dialled = runtime.handle.block_on(async {
            let layers = vec![Arc::new(TcpTls::dial_only()) as Arc<dyn Netlayer>];
            let node = Node::start(layers, SessionConfig::default())
                .map_err(|e| format!("cannot start a node to dial it: {e}"))?;
            let grant: Ref<Grant> = tokio::time::timeout(CONNECT_LIMIT, node.enliven(uri))
                .await
                .map_err(|_| {
                    format!(
                        "nothing answered within {}",
                        humantime::format_duration(CONNECT_LIMIT)
                    )
                })?
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((node, grant))
        });
        let (node, grant) = dialled.map_err(|e| {
            error(
                ErrorKind::Provider,
                format!("cannot reach the share at {uri}: {e}"),
            )
        })?;
        Ok(ShareLink {
            uri: uri.to_string(),
            runtime,
            _node: node,
            grant,
        })
    }

    /// The share's grant, to call.
    pub fn grant(&self) -> &Ref<Grant> {
        &self.grant
    }

    /// Waits up to `limit` for `promise`, an answer of the share (JSON).
    pub fn answer(&self, promise: Promise<String>, limit: Duration) -> Result<String, AppError> {
        let answered = self
            .runtime
            .handle
            .block_on(async { tokio::time::timeout(limit, promise.into_future()).await });
        match answered {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(self.lost(e)),
            Err(_) => Err(error(
                ErrorKind::Provider,
                format!(
                    "the share did not answer within {}",
                    humantime::format_duration(limit)
                ),
            )),
        }
    }

    /// Has `request` (streamed) done through the share: its standard input the chunks
    /// `feed` gives, its output passed to `output` (an error there abandons the request,
    /// which the answer then says).
    pub fn exchange(
        &self,
        request: &Request,
        feed: Receiver<Vec<u8>>,
        output: &mut dyn FnMut(Stream, Vec<u8>) -> Result<(), String>,
    ) -> Result<Response, AppError> {
        let json = serde_json::to_string(request).map_err(|e| {
            error(
                ErrorKind::Internal,
                format!("cannot write the request: {e}"),
            )
        })?;
        let grant = self.grant.clone();
        let streamed = self.runtime.handle.block_on(async move {
            let id: u64 = grant.send().open(json).into_future().await?;
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
            std::thread::spawn(move || {
                for chunk in feed {
                    for piece in chunk.chunks(MAX_INPUT) {
                        if tx.blocking_send(piece.to_vec()).is_err() {
                            return;
                        }
                    }
                }
            });
            let to = grant.clone();
            let pump = tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    let taken = to.send().input(id, ByteBuf::from(chunk)).into_future();
                    if !matches!(taken.await, Ok(true)) {
                        return;
                    }
                }
                let _ = to.send().input_end(id).into_future().await;
            });
            let mut abandoned = None;
            while abandoned.is_none() {
                let (chunks, ended) = grant.send().output(id).into_future().await?;
                for (which, bytes) in chunks {
                    let which = if which == 2 {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    };
                    if let Err(why) = output(which, bytes.into_vec()) {
                        abandoned = Some(why);
                        break;
                    }
                }
                if ended {
                    break;
                }
            }
            pump.abort();
            let answer = grant.send().finish(id).into_future().await?;
            Ok::<_, gobs_runtime::Error>((answer, abandoned))
        });
        let (answer, abandoned) = streamed.map_err(|e| self.lost(e))?;
        let response: Response = serde_json::from_str(&answer).map_err(|e| {
            error(
                ErrorKind::Provider,
                format!("the share answered what this gobs-app cannot read ({e})"),
            )
        })?;
        match (abandoned, response) {
            (Some(why), response) if !matches!(response, Response::Error(_)) => {
                Err(AppError::Protocol(why))
            }
            (_, response) => Ok(response),
        }
    }

    fn lost(&self, e: gobs_runtime::Error) -> AppError {
        error(
            ErrorKind::Provider,
            format!(
                "the share at {} did not answer: {e}; the boss may have stopped, or be \
                 unreachable",
                self.uri
            ),
        )
    }
}

fn error(kind: ErrorKind, message: String) -> AppError {
    AppError::Backend(BackendError::new(kind, message))
}
