//! One connection's byte stream: writes go straight to the socket from whichever thread
//! the core ran on, and only what the socket cannot take at once waits for the
//! connection's writer task; the reader task hands what it reads to the core itself.
//!
//! When a session ends, the writer flushes (the `op:abort` goes out) and shuts down its
//! half of the stream, and the reader reads on until the peer closes too — closing with
//! unread bytes would make the kernel answer the peer with a reset instead of an orderly
//! end of stream — but for [`CLOSE_GRACE`] at most: then the socket is closed whatever the
//! peer does, so a peer that never reads or never closes cannot keep our descriptor.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Shared;
use crate::captp::ConnId;
use crate::netlayer::{SourcePermit, Stream};

/// The most bytes a connection keeps waiting for its peer to read. A peer that lets more
/// pile up is dropped (its session ends with an error saying so), so that one slow peer
/// costs bounded memory and never holds up the others.
pub(super) const MAX_UNSENT: usize = 64 * 1024 * 1024;

/// 16 KiB: what a connection's reader starts with; a small buffer keeps an idle session
/// cheap (ten thousand of them are a benchmark case).
const READ_BUFFER: usize = 16 * 1024;

/// The most a busy connection's reader grows to: a read that fills its buffer doubles it,
/// so a stream of large messages (a `run`'s output, 64 KiB a chunk) is taken in a few
/// reads, each handed to the core at once; [`SHRINK_AFTER`] reads in a row that would
/// have fitted [`READ_BUFFER`] bring it back.
const MAX_READ_BUFFER: usize = 256 * 1024;

/// Small reads in a row after which a grown read buffer goes back to [`READ_BUFFER`].
const SHRINK_AFTER: u32 = 64;

/// The most write buffer an idle connection keeps after a backlog drains.
const KEPT_BUFFER: usize = 64 * 1024;

/// How long a closing connection still flushes what it owes the peer and reads what the
/// peer still sends; after it the socket is closed, flushed or not.
pub(super) const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// The peer has let too much pile up (see [`MAX_UNSENT`]).
#[derive(Debug)]
pub(super) struct Overflow {
    pub(super) unsent: usize,
}

/// The write side of a connection, shared by the threads that run the core and the
/// connection's writer task.
pub(super) struct Conn {
    out: Mutex<Out>,
    /// Wakes the writer task; the waker every write registers with the socket, so
    /// whichever thread wrote last, the socket's readiness reaches the writer.
    notify: Arc<WriterWake>,
    waker: Waker,
    /// Bytes (or a flush, or the shutdown) are waiting for the socket.
    backlog: AtomicBool,
    /// Counts the connection against its source address while it is open.
    _hold: Option<SourcePermit>,
    /// Tells the reader that the connection is closing (it then only drains, until
    /// [`Out::close_by`]).
    closing: Notify,
}

struct Out {
    /// Dropped once shut, broken, or out of grace: the socket closes with the reader's half.
    half: Option<WriteHalf<Stream>>,
    /// What the socket has not taken yet, from `sent` on.
    buf: Vec<u8>,
    sent: usize,
    flush: bool,
    close: bool,
    /// Writing failed or the stream is shut: nothing more goes out.
    done: bool,
    /// Once closing (or done): when the socket closes, whatever is left.
    close_by: Option<Instant>,
}

struct WriterWake(Notify);

impl Wake for WriterWake {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notify_one();
    }
}

fn lock(out: &Mutex<Out>) -> MutexGuard<'_, Out> {
    // Every update leaves the buffer and flags consistent.
    out.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Conn {
    /// Splits `stream` and starts its reader and writer tasks on the node's runtime;
    /// `hold` is let go of with the connection.
    pub(super) fn start(
        conn: ConnId,
        stream: Stream,
        hold: Option<SourcePermit>,
        shared: &Arc<Shared>,
    ) -> Arc<Conn> {
        let (c, read) = Conn::new(stream, hold);
        shared.runtime().spawn(writer(c.clone()));
        shared
            .runtime()
            .spawn(reader(conn, c.clone(), read, Arc::downgrade(shared)));
        c
    }

    /// The write side of `stream`, and its read half for the reader.
    fn new(stream: Stream, hold: Option<SourcePermit>) -> (Arc<Conn>, ReadHalf<Stream>) {
        let (read, write) = tokio::io::split(stream);
        let notify = Arc::new(WriterWake(Notify::new()));
        let c = Arc::new(Conn {
            out: Mutex::new(Out {
                half: Some(write),
                buf: Vec::new(),
                sent: 0,
                flush: false,
                close: false,
                done: false,
                close_by: None,
            }),
            waker: Waker::from(notify.clone()),
            notify,
            backlog: AtomicBool::new(false),
            _hold: hold,
            closing: Notify::new(),
        });
        (c, read)
    }

    /// Writes `bytes` now as far as the socket takes them; the rest waits for the writer
    /// task. Writes after [`Conn::close`] are dropped.
    pub(super) fn write(&self, bytes: &[u8]) -> Result<(), Overflow> {
        let mut out = lock(&self.out);
        if out.done || out.close {
            return Ok(());
        }
        // Nothing waiting: straight from the caller's bytes, and only what the socket does
        // not take is copied.
        let taken = if out.buf.is_empty() {
            write_now(&mut out, bytes, &mut Context::from_waker(&self.waker))
        } else {
            0
        };
        let unsent = out.buf.len() - out.sent + (bytes.len() - taken);
        if unsent > MAX_UNSENT {
            out.done = true;
            return Err(Overflow { unsent });
        }
        out.buf.extend_from_slice(&bytes[taken..]);
        out.flush = true;
        self.push(&mut out);
        Ok(())
    }

    /// Flushes what is waiting, then shuts the write half (on the writer task if the
    /// socket cannot take it all now); the socket closes within [`CLOSE_GRACE`].
    pub(super) fn close(&self) {
        let mut out = lock(&self.out);
        out.close = true;
        self.closing(&mut out);
        self.push(&mut out);
    }

    /// Starts the grace (once): the reader drains, and the socket closes at its end.
    fn closing(&self, out: &mut Out) {
        if out.close_by.is_none() {
            out.close_by = Some(Instant::now() + CLOSE_GRACE);
            self.closing.notify_one();
        }
    }

    /// The reader polls: if bytes wait, the writer task tries again (the reader's poll may
    /// have taken the socket's write readiness for itself, as a TLS stream's read can).
    fn kick(&self) {
        if self.backlog.load(Ordering::Acquire) {
            self.waker.wake_by_ref();
        }
    }

    /// Moves what waits to the socket until it would block; returns whether the writer
    /// task has nothing more to do (all sent, or the stream is done).
    fn push(&self, out: &mut Out) -> bool {
        let mut cx = Context::from_waker(&self.waker);
        let pending = push(out, &mut cx).is_pending();
        self.backlog.store(pending, Ordering::Release);
        if out.done {
            // Nothing more goes out: our half of the socket goes now, the reader drains.
            out.half = None;
            self.closing(out);
            // The writer task ends on its next wake.
            self.waker.wake_by_ref();
        }
        !pending && out.done
    }

    /// The node halted: nothing more goes out and the reader stops at once, so the socket
    /// closes as soon as the reader lets go of its half (at once if the runtime dropped it).
    pub(super) fn cut(&self) {
        self.abandon();
        let mut out = lock(&self.out);
        out.close_by = Some(Instant::now());
        self.closing.notify_one();
    }

    /// The grace is over: what the peer did not take is dropped with the socket.
    fn abandon(&self) {
        let mut out = lock(&self.out);
        out.done = true;
        out.half = None;
        out.buf = Vec::new();
        out.sent = 0;
        self.backlog.store(false, Ordering::Release);
    }
}

/// Writes `bytes` as far as the socket takes them now; how many it took (all of them if
/// the stream failed: they are dropped).
fn write_now(out: &mut Out, bytes: &[u8], cx: &mut Context<'_>) -> usize {
    let Some(half) = out.half.as_mut() else {
        out.done = true;
        return bytes.len();
    };
    let mut taken = 0;
    while taken < bytes.len() {
        match Pin::new(&mut *half).poll_write(cx, &bytes[taken..]) {
            Poll::Ready(Ok(n)) if n > 0 => taken += n,
            Poll::Ready(_) => {
                out.done = true;
                return bytes.len();
            }
            Poll::Pending => break,
        }
    }
    taken
}

/// Writes, flushes and (once closing) shuts down, as far as the socket allows.
fn push(out: &mut Out, cx: &mut Context<'_>) -> Poll<()> {
    if out.half.is_none() {
        out.done = true;
    }
    while !out.done && out.sent < out.buf.len() {
        let Out {
            half: Some(half),
            buf,
            sent,
            ..
        } = out
        else {
            break;
        };
        match Pin::new(half).poll_write(cx, &buf[*sent..]) {
            Poll::Ready(Ok(n)) if n > 0 => *sent += n,
            Poll::Ready(_) => out.done = true,
            Poll::Pending => return Poll::Pending,
        }
    }
    out.buf.clear();
    out.sent = 0;
    if out.buf.capacity() > KEPT_BUFFER {
        // A burst is over: an idle connection keeps little.
        out.buf = Vec::new();
    }
    if out.done {
        return Poll::Ready(());
    }
    let Some(half) = out.half.as_mut() else {
        out.done = true;
        return Poll::Ready(());
    };
    if out.flush {
        match Pin::new(&mut *half).poll_flush(cx) {
            Poll::Ready(Ok(())) => out.flush = false,
            Poll::Ready(Err(_)) => {
                out.done = true;
                return Poll::Ready(());
            }
            Poll::Pending => return Poll::Pending,
        }
    }
    if out.close {
        if Pin::new(half).poll_shutdown(cx).is_pending() {
            return Poll::Pending;
        }
        out.done = true;
    }
    Poll::Ready(())
}

/// Sends what the socket could not take at once, when it can; ends once the stream is
/// shut or broken, or when a closing connection's grace is over.
async fn writer(conn: Arc<Conn>) {
    loop {
        let close_by = lock(&conn.out).close_by;
        let woken = match close_by {
            None => {
                conn.notify.0.notified().await;
                true
            }
            Some(at) => tokio::time::timeout_at(at, conn.notify.0.notified())
                .await
                .is_ok(),
        };
        if !woken {
            return conn.abandon();
        }
        if conn.push(&mut lock(&conn.out)) {
            return;
        }
    }
}

/// Reads and hands every read to the core, on this task; tells the core when the stream
/// ends.
async fn reader(conn: ConnId, c: Arc<Conn>, mut half: ReadHalf<Stream>, shared: Weak<Shared>) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut small_reads = 0;
    // Once the connection is closing: when the reader stops waiting for the peer's end.
    let mut drain_until: Option<Instant> = None;
    let why = loop {
        let read = std::future::poll_fn(|cx| {
            c.kick();
            let mut rb = ReadBuf::new(&mut buf);
            Pin::new(&mut half)
                .poll_read(cx, &mut rb)
                .map_ok(|()| rb.filled().len())
        });
        let read = match drain_until {
            Some(at) => match tokio::time::timeout_at(at, read).await {
                Ok(r) => r,
                Err(_) => break "closed".to_owned(),
            },
            None => tokio::select! {
                r = read => r,
                () = c.closing.notified() => {
                    let by = lock(&c.out).close_by;
                    drain_until = Some(by.unwrap_or_else(|| Instant::now() + CLOSE_GRACE));
                    continue;
                }
            },
        };
        match read {
            Ok(0) => break "closed by the peer".to_owned(),
            // The session is over: what the peer still sends is read only to end in order.
            Ok(_) if drain_until.is_some() => {}
            Ok(n) => {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let bytes = &buf[..n];
                // A call to a vat on a LocalWorker this thread polls runs right after,
                // and its answer leaves in this same wake-up.
                gobs_runtime::LocalWorker::run_ready_after(|| {
                    shared.with_host(|host, _| host.core.bytes(conn, bytes));
                });
                fit_read_buffer(&mut buf, n, &mut small_reads);
            }
            Err(e) => break e.to_string(),
        }
    };
    // The core lets go of the session before the socket closes, so that a peer seeing
    // our end close knows its session was handled.
    if let Some(shared) = shared.upgrade() {
        shared.with_host(|host, _| host.lost(conn, &why));
    }
    c.close();
}

/// Grows `buf` after a read of `n` bytes that filled it (up to [`MAX_READ_BUFFER`]), and
/// shrinks it back to [`READ_BUFFER`] after [`SHRINK_AFTER`] reads in a row that fitted
/// that (`small_reads` counts them).
fn fit_read_buffer(buf: &mut Vec<u8>, n: usize, small_reads: &mut u32) {
    if n == buf.len() && buf.len() < MAX_READ_BUFFER {
        buf.resize(buf.len() * 2, 0);
    }
    if n > READ_BUFFER || buf.len() == READ_BUFFER {
        *small_reads = 0;
        return;
    }
    *small_reads += 1;
    if *small_reads >= SHRINK_AFTER {
        *buf = vec![0u8; READ_BUFFER];
        *small_reads = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_that_reads_nothing_costs_at_most_max_unsent() {
        // The peer's end is never read: the pipe takes 64 KiB, the rest waits.
        let (near, _peer) = tokio::io::duplex(64 * 1024);
        let (conn, _read) = Conn::new(Box::new(near), None);
        let mib = vec![7u8; 1 << 20];
        let refused =
            (0..MAX_UNSENT / mib.len() + 2).find_map(|i| conn.write(&mib).err().map(|o| (i, o)));
        let (at, overflow) = refused.expect("the writes past the bound are refused");
        assert_eq!(
            at,
            MAX_UNSENT / mib.len(),
            "refused at the first write past the bound"
        );
        assert!(overflow.unsent > MAX_UNSENT, "{overflow:?}");
        // The connection is done: later writes are dropped, not queued.
        conn.write(&mib).unwrap();
        assert!(lock(&conn.out).buf.len() <= MAX_UNSENT);
    }

    /// The clock is paused: it jumps to the grace's end once everything waits.
    #[tokio::test(start_paused = true)]
    async fn a_closing_connection_whose_peer_never_reads_lets_go_after_the_grace() {
        let (near, mut peer) = tokio::io::duplex(64 * 1024);
        let (conn, read) = Conn::new(Box::new(near), None);
        let task = tokio::spawn(writer(conn.clone()));
        // More than the pipe takes: the flush before the shutdown can never finish.
        conn.write(&vec![7u8; 256 * 1024]).unwrap();
        let start = Instant::now();
        conn.close();
        task.await.unwrap();
        assert!(start.elapsed() >= CLOSE_GRACE && start.elapsed() < Duration::from_secs(1));
        assert!(lock(&conn.out).half.is_none(), "the write half is let go");
        drop(read);
        // The peer reads what the pipe held, then the end of the stream.
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut peer, &mut got)
            .await
            .unwrap();
        assert_eq!(got.len(), 64 * 1024);
    }

    #[test]
    fn the_read_buffer_grows_on_full_reads_and_shrinks_after_small_ones() {
        let (mut buf, mut small) = (vec![0u8; READ_BUFFER], 0);
        fit_read_buffer(&mut buf, 100, &mut small);
        assert_eq!(
            (buf.len(), small),
            (READ_BUFFER, 0),
            "a small read of a small buffer"
        );
        let mut sizes = vec![];
        for _ in 0..6 {
            let full = buf.len();
            fit_read_buffer(&mut buf, full, &mut small);
            sizes.push(buf.len() / 1024);
        }
        assert_eq!(
            sizes,
            [32, 64, 128, 256, 256, 256],
            "KiB after each full read"
        );
        for _ in 1..SHRINK_AFTER {
            fit_read_buffer(&mut buf, 100, &mut small);
        }
        assert_eq!(
            buf.len(),
            MAX_READ_BUFFER,
            "one small read short of shrinking"
        );
        fit_read_buffer(&mut buf, READ_BUFFER + 1, &mut small);
        assert_eq!(small, 0, "a larger read starts the count again");
        for _ in 0..SHRINK_AFTER {
            fit_read_buffer(&mut buf, 100, &mut small);
        }
        assert_eq!(buf.len(), READ_BUFFER);
    }

    #[tokio::test]
    async fn what_the_socket_takes_at_once_is_not_kept() {
        let (near, mut peer) = tokio::io::duplex(64 * 1024);
        let (conn, _read) = Conn::new(Box::new(near), None);
        conn.write(b"hello").unwrap();
        assert!(lock(&conn.out).buf.is_empty(), "written straight through");
        let mut got = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut peer, &mut got)
            .await
            .unwrap();
        assert_eq!(&got, b"hello");
    }
}
