//! A committing turn's messages to other vats, handed over in chunks: one inbox lock and
//! at most one wake-up per chunk instead of per message.
//!
//! Chunks, not the whole turn at once: the receiving vat starts on the first chunk while
//! the rest are still being handed over. Messages to one vat keep their order (a chunk
//! holds consecutive messages to one vat); the commit flushes before any other kind of
//! effect, so effects still leave the vat in the order the turn made them.

use std::sync::Arc;

use crate::job::Envelope;
use crate::vat::shared::VatShared;

/// How many messages to one vat are handed over under one lock.
const CHUNK: usize = 256;

/// Messages waiting to be handed over to one vat.
#[derive(Default)]
pub(crate) struct Outbox {
    target: Option<Arc<VatShared>>,
    /// Kept between commits for its capacity.
    batch: Vec<Envelope>,
}

impl Outbox {
    /// Adds a message for `vat`, first handing over what waits for another vat.
    pub(crate) fn send(&mut self, vat: &Arc<VatShared>, env: Envelope) {
        match &self.target {
            Some(t) if t.id == vat.id => {}
            Some(_) => {
                self.flush();
                self.target = Some(vat.clone());
            }
            None => self.target = Some(vat.clone()),
        }
        self.send_again(env);
    }

    /// Adds a message for the vat of the last [`send`](Self::send).
    pub(crate) fn send_again(&mut self, env: Envelope) {
        // The journal makes a `SendAgain` only right after a send; were the vat unknown,
        // dropping the envelope breaks its promise rather than losing it silently.
        debug_assert!(self.target.is_some(), "a message again to no vat");
        let Some(t) = &self.target else { return };
        self.batch.push(env);
        if self.batch.len() >= CHUNK {
            t.send_batch(&mut self.batch);
        }
    }

    /// Hands over everything waiting.
    pub(crate) fn flush(&mut self) {
        if let Some(t) = self.target.take() {
            t.send_batch(&mut self.batch);
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Unwinding out of a commit: the messages still leave (the turn committed).
        self.flush();
    }
}
