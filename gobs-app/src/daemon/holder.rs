//! Who holds a lock of the state directory, as its lock file records it (`PID ROLE`): what
//! refusals name. Below both the locks and the errors that name their holders.

use std::fmt;

/// Who holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `gobs-app daemon`.
    Daemon,
    /// A command that opened the state itself.
    Embedded,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Daemon => "daemon",
            Role::Embedded => "embedded",
        })
    }
}

/// The holder recorded in a lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// What it is.
    pub role: Role,
}

impl Holder {
    /// Reads a holder line (`12 daemon`); `None` if it is not one.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let role = match words.next()? {
            "daemon" => Role::Daemon,
            "embedded" => Role::Embedded,
            _ => return None,
        };
        Some(Holder { pid, role })
    }
}
