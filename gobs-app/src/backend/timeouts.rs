//! How long the backend waits for each kind of answer ([`Timeouts`]).

use std::time::Duration;

/// How long the backend waits for each kind of answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Answers the boss gives from what it knows (lists, records, refusals).
    pub answer: Duration,
    /// Creating a machine (providers may take minutes).
    pub create: Duration,
    /// Destroying a machine.
    pub destroy: Duration,
    /// A machine operation with a time limit of its own (a command run on a machine): a
    /// backstop, as the machine enforces the limit and the boss puts a deadline on it.
    pub run: Duration,
    /// Any other machine operation (copying a file onto or off a machine): a backstop too,
    /// the boss's deadline on the machine comes sooner.
    pub files: Duration,
    /// How long `events` waits for a new event before it answers an empty page (the
    /// follower asks again at once); short, so a daemon stopping is not held up long.
    pub follow: Duration,
}

/// How much longer than an operation's own time limit (`run --timeout`) the backend waits
/// before it gives up on it (the machine's reconnection, and the answer's way back).
pub(crate) const RUN_MARGIN: Duration = Duration::from_secs(60);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            answer: Duration::from_secs(60),
            create: Duration::from_secs(15 * 60),
            destroy: Duration::from_secs(15 * 60),
            run: Duration::from_secs(60 * 60 + 60),
            files: Duration::from_secs(5 * 60),
            follow: Duration::from_secs(5),
        }
    }
}
