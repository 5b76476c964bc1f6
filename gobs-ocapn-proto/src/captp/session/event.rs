//! What a session asks its host to do.

use crate::captp::{LocalRef, PublicKey, RemoteRef, Selector, Term};
use crate::locator::PeerLocator;

/// What the session asks its host to do.
#[derive(Debug)]
pub enum Event {
    /// The peer's `op:start-session` arrived and checked out.
    Opened {
        /// Where the peer says it is (its signature over this was checked).
        location: Box<PeerLocator>,
        /// The peer's session key.
        remote_key: PublicKey,
    },
    /// Deliver `args` to a local object; tell `resolve_me` the result, and (if
    /// `answer_pos` is set) bind a promise for it with [`Session::bind_answer`](super::Session::bind_answer) before the
    /// next poll.
    Deliver {
        /// The recipient.
        target: LocalRef,
        /// The arguments.
        args: Vec<Term>,
        /// Where the peer wants the answer promise.
        answer_pos: Option<u64>,
        /// Who to tell the result.
        resolve_me: Option<RemoteRef>,
    },
    /// Tell `resolver` when the local promise `target` settles.
    Listen {
        /// The promise.
        target: LocalRef,
        /// Who to tell.
        resolver: RemoteRef,
        /// Whether a resolution to a promise counts.
        wants_partial: bool,
    },
    /// `op:get`/`op:index`/`op:untag`: the new answer promise (already bound at its
    /// position) is to settle to the selected part of what `target` settles to.
    Select {
        /// The promise (or object) taken apart.
        target: LocalRef,
        /// Which part.
        selector: Selector,
        /// The new answer's position (bind it with [`Session::bind_answer`](super::Session::bind_answer)).
        answer_pos: u64,
    },
    /// The peer released its last reference to a local object we exported.
    ExportReleased(LocalRef),
    /// The peer no longer needs the answer promise at this position.
    AnswerReleased(LocalRef),
    /// The session ended.
    Aborted {
        /// Why.
        reason: String,
        /// Whether the peer ended it (else we did).
        by_peer: bool,
    },
}
