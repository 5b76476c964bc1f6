//! Far messages to a reference backed by a sturdyref are sent again when they certainly
//! did not arrive, so a peer's restart costs its callers nothing.
//!
//! The policy: a message whose session was gone before it left (`not-sent`), or whose
//! peer could not be reached (`unreachable`, while enlivening the sturdyref), is sent
//! again through a fresh session, up to [`TRIES`] tries in all, waiting 250 ms, then
//! 500 ms, then 1 s between them. After the last, the caller gets the last error
//! ([`gobs_runtime::ErrorKind::Unreachable`] or `SessionLost`), and the next send starts
//! over. A message that was out when its session ended (`session-lost`) may have run, so
//! it is never sent again: the caller gets `SessionLost`, and the next send re-enlivens.
//! References without a sturdyref are never re-sent.

use std::time::Duration;

use super::remote::RemoteObject;
use crate::captp::Term;
use crate::node::{Core, Node, is_kind, kinds};

/// How many times a message is tried in all.
pub const TRIES: u32 = 4;

/// The wait before the second try; each further wait doubles it.
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// What is told the outcome, on the node's task.
pub(crate) type Done = Box<dyn FnOnce(&mut Core, Result<Term, Term>) + Send>;

/// Sends `args` to `remote` (enlivening its sturdyref when it has no live session) and
/// tells `done` the outcome, trying again as the module says.
pub(crate) fn send(
    core: &mut Core,
    node: &Node,
    remote: &RemoteObject,
    args: Vec<Term>,
    done: Done,
) {
    attempt(core, node.clone(), remote.clone(), args, 1, done);
}

fn attempt(core: &mut Core, node: Node, remote: RemoteObject, args: Vec<Term>, n: u32, done: Done) {
    let target = match remote.target_in(core) {
        Ok(t) => t,
        Err(e) => return done(core, Err(e)),
    };
    let again = again(&remote, n, &args);
    let p = core.send(target, args);
    core.when_settled_with_core(
        p,
        Box::new(move |core, outcome| after(core, node, remote, again, n, outcome, done)),
    );
    core.release(p);
}

/// The arguments of try `n`, kept if it may be tried again.
pub(crate) fn again(remote: &RemoteObject, n: u32, args: &[Term]) -> Option<Vec<Term>> {
    (n < TRIES && remote.has_sturdyref()).then(|| args.to_vec())
}

/// Try `n` of a message to `remote` ended with `outcome`: try `again` later if it
/// certainly did not arrive, else tell `done`. For a message whose first try was sent
/// elsewhere (a pipelined one, whose answer position its caller holds), `n` is 1.
pub(crate) fn after(
    core: &mut Core,
    node: Node,
    remote: RemoteObject,
    again: Option<Vec<Term>>,
    n: u32,
    outcome: Result<Term, Term>,
    done: Done,
) {
    match (outcome, again) {
        (Err(e), Some(args)) if undelivered(&e) => {
            remote.forget_live();
            let wait = FIRST_WAIT * 2u32.pow(n - 1);
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let on = node.clone();
                on.post(move |core| attempt(core, node, remote, args, n + 1, done));
            });
        }
        (outcome, _) => {
            if outcome.is_err() {
                remote.forget_if_lost(core);
            }
            done(core, outcome)
        }
    }
}

/// Whether the message certainly never reached the object.
fn undelivered(reason: &Term) -> bool {
    is_kind(reason, kinds::NOT_SENT) || is_kind(reason, kinds::UNREACHABLE)
}
