//! What became of a request whose daemon ended (killed, crashed) after taking it and before
//! answering. The command asks the state as it is now — a restarted daemon, or the store
//! opened by the command itself when none serves it — and says whether the change happened,
//! or that it cannot know, and what to run next: a creation or a destruction by the
//! machine's record, a copy onto a machine by the file it left there; a command run on a
//! machine cannot be known.

use crate::config::state_dir::StatePaths;
use crate::error::AppError;
use crate::model::{MachineInfo, MachineName, MachineStatus};
use crate::ops::{MachineOp, PutFile, Request};

/// The state as it is now, asked after an answer was lost.
pub trait StateNow {
    /// Machine `name`'s record: `None` if there is no such machine.
    fn machine(&self, name: &MachineName) -> Result<Option<MachineInfo>, AppError>;
    /// What file `path` on machine `name` holds.
    fn file(&self, name: &MachineName, path: &str) -> Result<Held, AppError>;
}

/// What a file holds: its size and sha256, enough to tell a copy's bytes from others
/// without holding them (a copy may be of any size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its size in bytes.
    pub bytes: u64,
    /// Its sha256, in lower-case hex.
    pub sha256: String,
}

impl Held {
    /// What `bytes` hold.
    pub fn of(bytes: &[u8]) -> Held {
        use sha2::Digest;
        Held {
            bytes: bytes.len() as u64,
            sha256: data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes)),
        }
    }

    /// What local file `path` holds now, read a block at a time.
    fn of_file(path: &std::path::Path) -> std::io::Result<Held> {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        let bytes = std::io::copy(&mut std::fs::File::open(path)?, &mut hash)?;
        Ok(Held {
            bytes,
            sha256: data_encoding::HEXLOWER.encode(&hash.finalize()),
        })
    }
}

/// The error for `request`, whose answer was lost for `reason`, with what the state now
/// shows about it (asked of `now`).
pub fn lost_answer(
    paths: &StatePaths,
    request: &Request,
    reason: String,
    now: &dyn StateNow,
) -> AppError {
    let outcome = match request {
        request if safe_to_repeat(request) => {
            "the command only reads, so nothing changed; run it again".to_string()
        }
        Request::CreateMachine { name, .. } => created(name, now.machine(name)),
        Request::DestroyMachine { name, .. } => destroyed(name, now.machine(name)),
        Request::PutFile(put) => copied(put, || now.file(&put.name, &put.path)),
        other => match other.machine_call() {
            Some(call) => call.when_lost(),
            // Operations of the boss added later: say nothing false about them.
            None => format!(
                "gobs-app cannot know whether `{}` took effect; check the state before running \
                 it again",
                other.op()
            ),
        },
    };
    AppError::DaemonEnded {
        socket: paths.socket(),
        reason,
        outcome,
    }
}

/// Whether `request` changes nothing on the boss or the machine, so that asking again after
/// a lost answer is safe: the reads of the boss's state ([`Request::only_reads`]), and the
/// machine operations that only read the machine (fetching a file).
pub fn safe_to_repeat(request: &Request) -> bool {
    request.only_reads() || request.machine_call().is_some_and(|call| call.only_reads())
}

fn created(name: &MachineName, now: Result<Option<MachineInfo>, AppError>) -> String {
    match now {
        Ok(Some(info)) => match info.status {
            MachineStatus::Running | MachineStatus::Unreachable | MachineStatus::Stopped => {
                format!(
                    "the creation took place: machine {name} exists and is {}",
                    info.status
                )
            }
            MachineStatus::Creating => format!(
                "the creation is still going on: machine {name} exists and is creating; \
                 `gobs-app machine {name}` shows when it is running"
            ),
            MachineStatus::Failed => format!(
                "the creation did not complete: machine {name} exists but failed ({}); \
                 `gobs-app destroy-machine {name}`, then create it again",
                info.error.as_deref().unwrap_or("no reason recorded")
            ),
            MachineStatus::Destroying => format!(
                "machine {name} exists and is being taken down; `gobs-app machine {name}` \
                 shows when it is gone"
            ),
        },
        Ok(None) => format!(
            "the creation did not take place: there is no machine {name}; run \
             `gobs-app create-machine {name}` again"
        ),
        Err(e) => cannot_know("created", name, &e),
    }
}

fn destroyed(name: &MachineName, now: Result<Option<MachineInfo>, AppError>) -> String {
    match now {
        Ok(None) => format!("the destruction took place: there is no machine {name} any more"),
        Ok(Some(info)) => format!(
            "the destruction did not finish: machine {name} still exists and is {}; run \
             `gobs-app destroy-machine {name}` again",
            info.status
        ),
        Err(e) => cannot_know("destroyed", name, &e),
    }
}

/// A file is written whole or not at all, so what is there says whether the copy happened:
/// the bytes sent (in the request, or streamed from the local file, read again) against
/// what the machine holds now. A tree (`-r`) cannot be told so: it says what to run.
fn copied(put: &PutFile, now: impl FnOnce() -> Result<Held, AppError>) -> String {
    let (name, path) = (&put.name, &put.path);
    let sent = if !put.content.0.is_empty() || !put.stream {
        Held::of(&put.content.0)
    } else if put.recursive {
        return put.when_lost();
    } else {
        match Held::of_file(&put.local) {
            Ok(sent) => sent,
            Err(e) => {
                let local = put.local.display();
                return format!(
                    "{} (reading {local} here again failed: {e})",
                    put.when_lost()
                );
            }
        }
    };
    match now() {
        Ok(there) if there == sent => format!(
            "the copy took place: {path} on machine {name} holds the {} bytes sent (sha256 {})",
            sent.bytes, sent.sha256
        ),
        Ok(there) => format!(
            "the copy did not take place: {path} on machine {name} holds {} bytes, not the {} \
             sent (a copy is written whole or not at all); run `gobs-app put-file {name} {} \
             {path}` again",
            there.bytes,
            sent.bytes,
            put.local.display()
        ),
        Err(e) => format!("{} (reading it back failed: {e})", put.when_lost()),
    }
}

fn cannot_know(done: &str, name: &MachineName, asking: &AppError) -> String {
    format!(
        "gobs-app cannot know whether machine {name} was {done}: asking the state failed \
         ({asking}); once the state is reachable, `gobs-app machine {name}` shows it"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn put(content: &[u8]) -> PutFile {
        PutFile {
            name: "m".parse().unwrap(),
            path: "/etc/app.conf".into(),
            mode: None,
            content: crate::files::FileContent(content.to_vec()),
            local: "app.conf".into(),
            recursive: false,
            stream: false,
            io: None,
        }
    }

    #[test]
    fn a_copy_is_known_by_what_the_file_holds_now() {
        let sent = put(b"new");
        let took = copied(&sent, || Ok(Held::of(b"new")));
        assert!(took.contains("the copy took place"), "{took}");
        assert!(took.contains("holds the 3 bytes sent"), "{took}");
        let not = copied(&sent, || Ok(Held::of(b"older")));
        assert!(not.contains("did not take place"), "{not}");
        assert!(
            not.contains("`gobs-app put-file m app.conf /etc/app.conf` again"),
            "{not}"
        );
        let unknown = copied(&sent, || {
            Err(AppError::Protocol("machine m is unreachable".into()))
        });
        assert!(
            unknown.contains("cannot know whether /etc/app.conf was written"),
            "{unknown}"
        );
        assert!(unknown.contains("machine m is unreachable"), "{unknown}");
    }

    /// A streamed copy carries no bytes in its request: its local file is read again, and
    /// a tree cannot be told by one file.
    #[test]
    fn a_streamed_copy_is_known_by_its_local_file_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("big");
        std::fs::write(&local, vec![7u8; 100_000]).unwrap();
        let streamed = PutFile {
            local: local.clone(),
            stream: true,
            ..put(b"")
        };
        let took = copied(&streamed, || Ok(Held::of(&vec![7u8; 100_000])));
        assert!(took.contains("holds the 100000 bytes sent"), "{took}");
        let not = copied(&streamed, || Ok(Held::of(&vec![7u8; 99_999])));
        assert!(
            not.contains("holds 99999 bytes, not the 100000 sent"),
            "{not}"
        );
        let tree = PutFile {
            recursive: true,
            ..streamed.clone()
        };
        let asked = std::cell::Cell::new(false);
        let unknown = copied(&tree, || {
            asked.set(true);
            Ok(Held::of(b""))
        });
        assert!(unknown.contains("cannot know"), "{unknown}");
        assert!(!asked.get(), "a tree is not read back as one file");
        std::fs::remove_file(&local).unwrap();
        let gone = copied(&streamed, || Ok(Held::of(b"")));
        assert!(
            gone.contains("reading") && gone.contains("here again failed"),
            "{gone}"
        );
    }

    fn machine(status: MachineStatus) -> Result<Option<MachineInfo>, AppError> {
        Ok(Some(MachineInfo {
            name: "m".into(),
            provider: "dummy".into(),
            status,
            created_at: 0,
            bindings: vec![],
            error: (status == MachineStatus::Failed).then(|| "it broke".to_string()),
            host: None,
        }))
    }

    #[test]
    fn each_state_of_the_machine_says_what_became_of_a_creation_and_what_to_run() {
        let m: MachineName = "m".parse().unwrap();
        let says = |now, words: &[&str]| {
            let text = created(&m, now);
            for w in words {
                assert!(text.contains(w), "{w:?} not in {text:?}");
            }
        };
        says(
            machine(MachineStatus::Running),
            &["creation took place", "is running"],
        );
        says(
            machine(MachineStatus::Creating),
            &["still going on", "`gobs-app machine m`"],
        );
        says(
            machine(MachineStatus::Failed),
            &[
                "did not complete",
                "it broke",
                "`gobs-app destroy-machine m`",
            ],
        );
        says(
            Ok(None),
            &["did not take place", "`gobs-app create-machine m`"],
        );
        let unreachable = AppError::Protocol("no answer".into());
        says(
            Err(unreachable),
            &["cannot know whether machine m was created", "no answer"],
        );
    }

    #[test]
    fn a_destruction_is_done_when_the_machine_is_gone() {
        let m: MachineName = "m".parse().unwrap();
        assert!(destroyed(&m, Ok(None)).contains("destruction took place"));
        let left = destroyed(&m, machine(MachineStatus::Destroying));
        assert!(left.contains("did not finish"), "{left}");
        assert!(left.contains("`gobs-app destroy-machine m`"), "{left}");
    }

    #[test]
    fn only_questions_are_asked_again() {
        use crate::ops::{GetFile, Run};
        let get = Request::GetFile(GetFile {
            name: "m".parse().unwrap(),
            path: "/etc/motd".into(),
            local: None,
            recursive: false,
            stream: false,
            io: None,
        });
        assert!(safe_to_repeat(&get));
        assert!(safe_to_repeat(&Request::ListMachines {}));
        let create = Request::CreateMachine {
            name: "m".parse().unwrap(),
            provider: None,
            host: None,
            progress: Default::default(),
        };
        assert!(!safe_to_repeat(&create));
        let run = Request::Run(Run {
            name: "m".parse().unwrap(),
            command: vec!["true".into()],
            timeout: None,
            raw: false,
            stream: false,
            terminal: false,
            tty: None,
            io: None,
        });
        assert!(!safe_to_repeat(&run));
    }
}
