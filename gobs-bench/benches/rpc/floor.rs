//! The floor: what the socket itself costs on this machine. A raw ping-pong over the very
//! streams the OCapN netlayers make (tcp-testing-only: TCP with `TCP_NODELAY`; tcp-tls:
//! the same rustls setup and handshake), between the same two processes and runtimes as
//! the other rows, with a request and an answer of the sizes a typed call puts on the
//! wire. No framing, no codec, no dispatch: a gobs call can come near it, not under it.

use std::cell::RefCell;
use std::sync::Arc;

use gobs_ocapn::locator::PeerLocator;
use gobs_ocapn::netlayer::{Netlayer, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The bytes a typed `echo(42)` sends, as `strace -e sendto` shows them on the client
/// (tcp-testing-only; on tcp-tls, before encryption): its `op:deliver` (73), in the same
/// write as the `op:gc-answer` (22) that lets go of the call before it.
pub const REQUEST: usize = 95;
/// The bytes its answer takes: the `op:deliver-only` that fulfils it.
pub const ANSWER: usize = 79;

/// Serves ping-pong on every connection `netlayer` accepts, until the process ends.
pub async fn serve(netlayer: Arc<dyn Netlayer>) {
    loop {
        match netlayer.accept().await {
            Ok(accepted) => {
                tokio::spawn(pong(accepted.stream));
            }
            Err(e) => {
                eprintln!("the floor's {} listener failed: {e}", netlayer.transport());
                return;
            }
        }
    }
}

/// Answers every [`REQUEST`] bytes with [`ANSWER`] bytes until the peer closes.
async fn pong(mut stream: Stream) {
    let mut request = [0u8; REQUEST];
    let answer = [7u8; ANSWER];
    while stream.read_exact(&mut request).await.is_ok() {
        if stream.write_all(&answer).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// The client's end of a ping-pong connection. Used from one thread (the bench's), each
/// round trip in a `block_on` of its own, as the gobs and tonic rows are.
pub struct Floor {
    stream: RefCell<Option<Stream>>,
}

impl Floor {
    /// Connects through `netlayer` (the client's own, as a node would dial) to `uri`.
    pub async fn connect(netlayer: &dyn Netlayer, uri: &str) -> Floor {
        let peer = PeerLocator::parse(uri).unwrap();
        let stream = netlayer.connect(&peer).await.unwrap();
        Floor {
            stream: RefCell::new(Some(stream)),
        }
    }

    /// One request, one answer.
    pub async fn round_trip(&self) {
        // Taken out for the await (a `RefCell` borrow must not be held across one).
        let mut stream = self.stream.borrow_mut().take().unwrap();
        stream.write_all(&[42u8; REQUEST]).await.unwrap();
        stream.flush().await.unwrap();
        let mut answer = [0u8; ANSWER];
        stream.read_exact(&mut answer).await.unwrap();
        *self.stream.borrow_mut() = Some(stream);
    }
}
