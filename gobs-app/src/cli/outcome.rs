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
    /// The bytes of file `path` on machine `name`.
    fn file(&self, name: &MachineName, path: &str) -> Result<Vec<u8>, AppError>;
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
        Request::PutFile(put) => copied(put, now.file(&put.name, &put.path)),
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

/// A file is written whole or not at all, so what is there says whether the copy happened.
fn copied(put: &PutFile, now: Result<Vec<u8>, AppError>) -> String {
    let (name, path, sent) = (&put.name, &put.path, &put.content.0);
    match now {
        Ok(there) if there == *sent => format!(
            "the copy took place: {path} on machine {name} holds the {} bytes sent",
            sent.len()
        ),
        Ok(there) => format!(
            "the copy did not take place: {path} on machine {name} holds {} bytes, not the {} \
             sent (a copy is written whole or not at all); run `gobs-app put-file {name} {} \
             {path}` again",
            there.len(),
            sent.len(),
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
        }
    }

    #[test]
    fn a_copy_is_known_by_what_the_file_holds_now() {
        let sent = put(b"new");
        let took = copied(&sent, Ok(b"new".to_vec()));
        assert!(took.contains("the copy took place"), "{took}");
        assert!(took.contains("holds the 3 bytes sent"), "{took}");
        let not = copied(&sent, Ok(b"older".to_vec()));
        assert!(not.contains("did not take place"), "{not}");
        assert!(
            not.contains("`gobs-app put-file m app.conf /etc/app.conf` again"),
            "{not}"
        );
        let unknown = copied(
            &sent,
            Err(AppError::Protocol("machine m is unreachable".into())),
        );
        assert!(
            unknown.contains("cannot know whether /etc/app.conf was written"),
            "{unknown}"
        );
        assert!(unknown.contains("machine m is unreachable"), "{unknown}");
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
