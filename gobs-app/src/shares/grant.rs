//! [`Grant`]: an attenuated facet of one machine, in the boss's [`ShareBook`] vat and
//! published on the boss's node as the sturdyref `gobs-app share` prints. Whoever holds
//! the URI reaches only its methods: `run`, `put-file`, `get-file` (each a machine
//! operation as the control socket carries it, JSON; the machine it names is replaced by
//! the grant's) and `status`. Each checks, in this order, that the grant is not revoked,
//! not expired and allows the operation; each use, allowed or refused, is recorded with
//! the grant's id, the operation and the time. An allowed call goes through the book's
//! route, the command line's own path to machines.
//!
//! **Revocation is immediate.** The grant keeps the calls it has in flight (not saved: a
//! restart ends them anyway); revoking cancels each, as when a command line client goes
//! away mid-call (the boss stops waiting for the machine, and a `local` machine's command
//! is killed), and answers its caller at once with the refusal, so a live session learns
//! of it mid-command. Refusals are answers, not broken promises: a refused
//! turn must commit, or its use would not be recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gobs_runtime::{Promise, Ref, Resolver, define_actor};

use serde_bytes::ByteBuf;

use super::model::{Right, ShareInfo, ShareUse, now, rights_text};
use super::saved::{Grant, GrantCall, GrantSend, Live, LiveCalls, ShareBook, Terms};
use super::stream::{Batch, MAX_STREAMS, Streams};
use crate::daemon::protocol::MAX_REQUEST_BYTES;
use crate::hosts::model::shown_time;
use crate::model::{BackendError, Cancel, ErrorKind, MachineName};
use crate::ops::{MachineCall, Request, Response};
use crate::run_io::RunIo;

impl Grant {
    /// A new grant `id` of `rights` on `machine`.
    pub fn made(
        id: String,
        machine: String,
        rights: Vec<Right>,
        note: String,
        expires_at: Option<u64>,
        book: Ref<ShareBook>,
    ) -> Grant {
        Grant {
            id,
            terms: Terms {
                machine,
                rights,
                note,
                created_at: now(),
                expires_at,
            },
            revoked_at: None,
            last_use: None,
            uses: 0,
            book,
            live: LiveCalls::default(),
            streams: Streams::default(),
        }
    }

    /// Why operation `right` is refused now, if it is.
    fn refusal(&self, right: Right, at: u64) -> Option<BackendError> {
        let id = &self.id;
        if let Some(revoked) = self.revoked_at {
            return Some(revoked_error(id, revoked));
        }
        if let Some(expiry) = self.terms.expires_at.filter(|e| at >= *e) {
            return Some(BackendError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "share {id} expired at {}; ask the machine's operator for a new one",
                    shown_time(expiry)
                ),
            ));
        }
        if !self.terms.rights.contains(&right) {
            return Some(BackendError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "share {id} does not allow `{right}` (it allows {}); ask the machine's \
                     operator for a share that does",
                    rights_text(&self.terms.rights)
                ),
            ));
        }
        None
    }

    /// Records a use of `right` (refused with `refused`, or allowed).
    fn record(&mut self, right: Right, at: u64, refused: Option<&BackendError>) {
        self.last_use = Some(at);
        if refused.is_none() {
            self.uses += 1;
        }
        let used = ShareUse {
            grant: self.id.clone(),
            machine: self.terms.machine.clone(),
            op: right.name().to_string(),
            at,
            refused: refused.map(|e| e.message.clone()),
        };
        if let Err(e) = self.book.call().note_use(used) {
            tracing::warn!(share = self.id, "cannot record a use of the share: {e}");
        }
    }

    /// The machine operation `request` asks for, on this grant's machine: answered whole
    /// (`io` none), or streamed through `io`.
    fn machine_call(
        &self,
        right: Right,
        request: &str,
        io: Option<RunIo>,
    ) -> Result<Arc<dyn MachineCall>, BackendError> {
        let mut request = match (right, read_request(request)?) {
            (Right::Run, Request::Run(mut run)) => {
                // A share's run has no terminal.
                run.tty = None;
                Request::Run(run)
            }
            (Right::PutFile, Request::PutFile(put)) => Request::PutFile(put),
            (Right::GetFile, Request::GetFile(get)) => Request::GetFile(get),
            (_, other) => {
                return Err(BackendError::invalid(format!(
                    "method `{right}` of a share was called with a `{}` request",
                    other.op()
                )));
            }
        };
        let machine: MachineName = self
            .terms
            .machine
            .parse()
            .map_err(|_| BackendError::internal("a share names a machine that is no name"))?;
        let streamed = io.is_some();
        match &mut request {
            Request::Run(run) => (run.name, run.stream) = (machine, streamed),
            Request::PutFile(put) => (put.name, put.stream) = (machine, streamed),
            Request::GetFile(get) => (get.name, get.stream) = (machine, streamed),
            _ => {}
        }
        if let Some(slot) = request.stream_io() {
            *slot = io;
        }
        request
            .into_machine_call()
            .ok_or_else(|| BackendError::internal("a machine request is no machine operation"))
    }

    /// Has `call` done through the book's route; `cancel` stops it.
    fn forward(
        &self,
        call: Arc<dyn MachineCall>,
        cancel: Cancel,
    ) -> Result<Promise<Result<Response, BackendError>>, BackendError> {
        self.book
            .call()
            .forward(call, cancel)
            .map_err(BackendError::from)
    }

    /// Does `right` with `request`: the answer, as the control socket writes it.
    fn machine_op(&mut self, right: Right, request: String) -> Promise<String> {
        let at = now();
        let call = match self.refusal(right, at) {
            Some(refused) => Err(refused),
            None => self.machine_call(right, &request, None),
        };
        let call = match call {
            Ok(call) => call,
            Err(refused) => {
                self.record(right, at, Some(&refused));
                return answered(&Response::Error(refused));
            }
        };
        self.record(right, at, None);
        let cancel = Cancel::new();
        let forwarded = match self.forward(call, cancel.clone()) {
            Ok(promise) => promise,
            Err(e) => return answered(&Response::Error(e)),
        };
        self.live(forwarded, cancel)
    }

    /// The caller's answer to `forwarded`, kept until it comes or the grant is revoked.
    fn live(
        &self,
        forwarded: Promise<Result<Response, BackendError>>,
        cancel: Cancel,
    ) -> Promise<String> {
        let (promise, resolver) = Promise::pair();
        let answer = Arc::new(Mutex::new(Some(resolver)));
        let filled = answer.clone();
        let _ = forwarded.then(move |outcome| {
            let response = match outcome {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => Response::Error(e),
                Err(e) => Response::Error(BackendError::from(e)),
            };
            if let Some(resolver) = take(&filled) {
                resolver.fulfill(json(&response));
            }
        });
        let mut live = self.live.0.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|l| l.answer.lock().is_ok_and(|a| a.is_some()));
        live.push(Live { cancel, answer });
        promise
    }
}

#[define_actor]
impl Grant {
    /// Runs a command on the grant's machine: `request` is a `run` request (JSON); answers
    /// its response (JSON), a refusal included.
    pub fn run(&mut self, request: String) -> Promise<String> {
        self.machine_op(Right::Run, request)
    }

    /// Copies a file onto the grant's machine: `request` is a `put-file` request (JSON).
    pub fn put_file(&mut self, request: String) -> Promise<String> {
        self.machine_op(Right::PutFile, request)
    }

    /// Copies a file off the grant's machine: `request` is a `get-file` request (JSON).
    pub fn get_file(&mut self, request: String) -> Promise<String> {
        self.machine_op(Right::GetFile, request)
    }

    /// The machine's record (JSON), as `gobs-app machine NAME` answers it.
    pub fn status(&mut self) -> Promise<String> {
        let at = now();
        if let Some(refused) = self.refusal(Right::Status, at) {
            self.record(Right::Status, at, Some(&refused));
            return answered(&Response::Error(refused));
        }
        self.record(Right::Status, at, None);
        let machine: MachineName = match self.terms.machine.parse() {
            Ok(m) => m,
            Err(_) => return answered(&Response::Error(BackendError::internal("no name"))),
        };
        let asked = self
            .book
            .call()
            .machine(machine)
            .map_err(BackendError::from);
        match asked {
            Ok(promise) => {
                let answer = promise.then(|a| match a {
                    Ok(Ok(info)) => Ok(Response::Machine(info)),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(BackendError::from(e)),
                });
                self.live(answer, Cancel::new())
            }
            Err(e) => answered(&Response::Error(e)),
        }
    }

    /// Opens a stream (see [`super::stream`]) for `request`, a streamed `run`, `put-file`
    /// or `get-file` request (JSON): its number. A refusal is the stream's answer.
    pub fn open(&mut self, request: String) -> u64 {
        let at = now();
        let (io, ends) = RunIo::pair();
        let asked = read_request(&request).and_then(|r| {
            right_of(&r).ok_or_else(|| {
                BackendError::invalid(format!("a share does not stream `{}`", r.op()))
            })
        });
        let call = asked.and_then(|right| {
            let call = match self.refusal(right, at) {
                Some(refused) => Err(refused),
                None if !self.streams.has_room() => Err(BackendError::new(
                    ErrorKind::Busy,
                    format!(
                        "share {} has {MAX_STREAMS} streams running (its limit); try again once one \
                         has ended",
                        self.id
                    ),
                )),
                None => self.machine_call(right, &request, Some(io.clone())),
            };
            self.record(right, at, call.as_ref().err());
            call
        });
        let cancel = Cancel::new();
        let over = Arc::new(AtomicBool::new(false));
        let ended = over.clone();
        let answer = match call.and_then(|call| self.forward(call, cancel.clone())) {
            // Over before its output ends, so a holder that saw the end finds it over.
            Ok(forwarded) => forwarded.then(move |outcome| {
                ended.store(true, Ordering::Release);
                io.end();
                json(&match outcome {
                    Ok(Ok(response)) => response,
                    Ok(Err(e)) => Response::Error(e),
                    Err(e) => Response::Error(BackendError::from(e)),
                })
            }),
            Err(refused) => {
                ended.store(true, Ordering::Release);
                io.end();
                answered(&Response::Error(refused))
            }
        };
        self.streams.add(ends, cancel, answer, over)
    }

    /// Passes `bytes` to stream `stream`'s standard input: answers whether it was taken.
    pub fn input(&self, stream: u64, bytes: ByteBuf) -> Result<Promise<bool>, String> {
        self.streams.input(stream, bytes.into_vec())
    }

    /// Ends stream `stream`'s standard input.
    pub fn input_end(&self, stream: u64) -> Result<(), String> {
        self.streams.input_end(stream)
    }

    /// Stream `stream`'s output since the last call (one call at a time).
    pub fn output(&self, stream: u64) -> Result<Promise<Batch>, String> {
        self.streams.output(stream)
    }

    /// Stream `stream`'s answer (JSON, as the control socket writes it); closes it.
    pub fn finish(&self, stream: u64) -> Result<Promise<String>, String> {
        self.streams.finish(stream)
    }

    /// Its row, for `gobs-app shares`.
    #[actor(local)]
    pub fn info(&self) -> ShareInfo {
        ShareInfo {
            id: self.id.clone(),
            machine: self.terms.machine.clone(),
            rights: self.terms.rights.clone(),
            note: self.terms.note.clone(),
            created_at: self.terms.created_at,
            expires_at: self.terms.expires_at,
            revoked_at: self.revoked_at,
            last_use: self.last_use,
            uses: self.uses,
        }
    }

    /// Refuses every use from now on, and ends the calls in flight with the refusal.
    #[actor(local)]
    pub fn revoke(&mut self) -> ShareInfo {
        let at = *self.revoked_at.get_or_insert_with(now);
        let live = std::mem::take(&mut *self.live.0.lock().unwrap_or_else(|e| e.into_inner()));
        let refused = json(&Response::Error(revoked_error(&self.id, at)));
        self.streams.cancel_all(&refused);
        for call in live {
            call.cancel.cancel();
            if let Some(resolver) = take(&call.answer) {
                resolver.fulfill(refused.clone());
            }
        }
        tracing::info!(
            share = self.id,
            machine = self.terms.machine,
            "share revoked"
        );
        self.info()
    }
}

fn revoked_error(id: &str, at: u64) -> BackendError {
    BackendError::new(
        ErrorKind::InvalidRequest,
        format!(
            "share {id} was revoked (at {}; by `gobs-app revoke`, or its machine was \
             destroyed): it no longer works",
            shown_time(at)
        ),
    )
}

fn take(answer: &Mutex<Option<Resolver<String>>>) -> Option<Resolver<String>> {
    answer.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// `response` as the control socket writes it.
fn json(response: &Response) -> String {
    serde_json::to_string(response).unwrap_or_else(|e| {
        format!(
            r#"{{"type":"error","data":{{"kind":"internal","message":"cannot write the answer: {e}"}}}}"#
        )
    })
}

fn answered(response: &Response) -> Promise<String> {
    Promise::fulfilled(json(response))
}

/// `request` (JSON, as the control socket takes it), bounded.
fn read_request(request: &str) -> Result<Request, BackendError> {
    if request.len() > MAX_REQUEST_BYTES {
        return Err(BackendError::invalid(format!(
            "a request of {} bytes is over the limit of {MAX_REQUEST_BYTES}",
            request.len()
        )));
    }
    serde_json::from_str(request)
        .map_err(|e| BackendError::invalid(format!("not a request gobs-app reads: {e}")))
}

/// The right a request needs, if it is one a share can allow.
fn right_of(request: &Request) -> Option<Right> {
    match request {
        Request::Run(_) => Some(Right::Run),
        Request::PutFile(_) => Some(Right::PutFile),
        Request::GetFile(_) => Some(Right::GetFile),
        _ => None,
    }
}
