//! One machine operation in its whole form on a network machine: its message sent through
//! the boss's hob gateway, its answer awaited within the call's deadline and read, bounded,
//! by the operation. Used by every operation that does not stream, and by the streamed ones
//! towards an older hob-client.

use std::time::Duration;

use super::answers;
use super::gateway::Gateway;
use crate::model::Cancel;
use crate::ops::MachineCall;
use crate::ops::machine::Reply;

/// Has machine `machine` do `call` through its hob-client's session on gateway `g` (see
/// [`Gateway::ask`], which waits at most `wait` for a session that is down) and waits for
/// the answer, at most the call's deadline ([`answers::Call::deadline`] with `answer` as
/// the answer timeout; `default_limit` is the machine's time limit for work the request
/// gives none), and no longer than
/// `cancel` stays unset; the answer is read and bounded by the call's operation. Blocking:
/// off the vats.
pub fn call_through(
    g: &Gateway,
    machine: &str,
    call: &dyn MachineCall,
    default_limit: Duration,
    (wait, answer): (Duration, Duration),
    cancel: &Cancel,
) -> Result<Reply, String> {
    let asked = g.ask(machine, call.message(default_limit), wait);
    let call_made = call.call(default_limit);
    let answer = answers::wait_answer(machine, call_made, answer, asked, Some(cancel))?;
    call.read_reply(&answer)
}
