//! `put-file`: a file, or with `-r` a directory tree, copied onto a machine, written there
//! whole or not at all.
//!
//! The command line streams it ([`crate::files::archive`]) as a streamed request's standard
//! input; on the hob wire the boss sends `put-stream PATH SINK` and the machine pulls the
//! stream from the sink ([`crate::hob_net::copy_boss`]). An older hob-client gets
//! `put-file PATH BYTES MODE` (an absolute path, at most [`MAX_FILE`] bytes, permission
//! bits up to `0o7777`) → `true`, and so does a file an older command line sent whole in
//! its request.

use std::path::PathBuf;

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;
use serde::{Deserialize, Serialize};

use super::machine::MachineOp;
use crate::files::unpack::Unpacked;
use crate::files::{FileContent, FileCopied, FileMode, MAX_FILE, check_remote_path, check_size};
use crate::hob_net::answers::{Call, Work};
use crate::hob_net::wire::{as_string, text};
use crate::model::{BackendError, MachineName};
use crate::run_io::RunIo;

// The command line's help for `put-file` is its entry's in the list of operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct PutFile {
    /// The machine's name
    #[arg(index = 1)]
    pub name: MachineName,
    /// Where it goes on the machine (an absolute path): replaced whole, a directory too
    #[arg(index = 3, value_name = "REMOTE_PATH")]
    pub path: String,
    /// Its permission bits, in octal (e.g. 644) [default: the local file's]
    #[arg(long, value_name = "OCTAL")]
    pub mode: Option<FileMode>,
    /// Copy a directory and everything in it (files, subdirectories, symlinks as links)
    #[arg(short = 'r', long)]
    #[serde(skip)]
    pub recursive: bool,
    /// The file's bytes, when an older command line sends them whole in the request (at
    /// most [`MAX_FILE`]); this one streams them instead
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "is_empty")]
    pub content: FileContent,
    /// The file or directory to copy
    #[arg(index = 2, value_name = "LOCAL_PATH")]
    #[serde(skip)]
    pub local: PathBuf,
    /// The copy's stream comes as the request's standard input, in frames
    /// ([`crate::daemon::stream`]); the command line sets it.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// The copy's stream inside this process ([`crate::files::archive`] on the standard
    /// input of [`crate::run_io`]); set by whoever streams it, never sent.
    #[arg(skip)]
    #[serde(skip)]
    pub io: Option<RunIo>,
}

fn is_empty(content: &FileContent) -> bool {
    content.0.is_empty()
}

impl PutFile {
    /// The permission bits the file gets: the request's, else [`FileMode::DEFAULT`].
    pub fn mode(&self) -> FileMode {
        self.mode.unwrap_or(FileMode::DEFAULT)
    }
}

/// What a copy may take on the machine: files of any size travel at their speed, so the
/// limit is the machine's time limit for work, as for a command.
pub(crate) fn copy_call(name: &'static str, default_limit: std::time::Duration) -> Call {
    Call {
        name,
        work: Some(Work {
            limit: default_limit,
            called: "the machine's time limit for work (its provider's run_timeout)",
            still: ", and the copy may still be going on there (its target stays as it was \
                    until the copy is whole)",
            raise: "if the copy needs longer, raise run_timeout in its provider's \
                    [providers.NAME] table",
        }),
    }
}

impl MachineOp for PutFile {
    const NAME: &'static str = "put-file";
    const ON_FILES: bool = true;
    type Args = (String, Vec<u8>, u32);
    /// A streamed copy's summary, as the machine wrote it; none from the whole form.
    type Reply = Option<Unpacked>;
    type Answer = FileCopied;

    fn machine(&self) -> &MachineName {
        &self.name
    }

    fn check(&self) -> Result<(), BackendError> {
        let (name, path) = (self.name.as_str(), &self.path);
        check_remote_path(name, path).map_err(BackendError::invalid)?;
        let size = self.content.0.len() as u64;
        check_size(&format!("the file for {path} on machine {name}"), size)
            .map_err(BackendError::invalid)
    }

    fn call(&self, default_limit: std::time::Duration) -> Call {
        copy_call(Self::NAME, default_limit)
    }

    fn args(&self, _default_limit: std::time::Duration) -> Vec<Term> {
        vec![
            text(&self.path),
            Term::Data(Value::Bytes(self.content.0.clone())),
            Term::Data(Value::from(i64::from(self.mode().0))),
        ]
    }

    fn read_args(args: &[Term]) -> Result<(String, Vec<u8>, u32), String> {
        let usage = "put-file takes a path, the bytes and a mode (e.g. 420 for 0644)";
        let [path, bytes, mode] = args else {
            return Err(usage.into());
        };
        let path = as_string(path).ok_or(usage)?;
        let bytes = match bytes.to_value() {
            Some(Value::Bytes(b)) => b,
            _ => return Err(usage.into()),
        };
        let mode = mode
            .to_value()
            .and_then(|v| v.as_int())
            .and_then(|m| u32::try_from(m).ok())
            .filter(|m| *m <= 0o7777)
            .ok_or(usage)?;
        if bytes.len() > MAX_FILE {
            return Err(format!(
                "put-file carries at most {MAX_FILE} bytes; {path} would be {}",
                bytes.len()
            ));
        }
        Ok((path, bytes, mode))
    }

    fn reply_term(_: &Option<Unpacked>) -> Term {
        Term::Data(Value::Bool(true))
    }

    /// Whatever the machine answers, the file is written: the answer carries nothing.
    fn read_reply(_answer: &Term) -> Result<Option<Unpacked>, String> {
        Ok(None)
    }

    fn answer(&self, copied: Option<Unpacked>) -> FileCopied {
        let whole = || Unpacked {
            files: 1,
            bytes: self.content.0.len() as u64,
            mode: self.mode().0,
            sha256: None,
        };
        let copied = copied.unwrap_or_else(whole);
        FileCopied {
            machine: self.name.to_string(),
            path: self.path.clone(),
            size: copied.bytes,
            mode: FileMode(copied.mode & 0o7777),
            files: copied.files,
            sha256: copied.sha256,
        }
    }

    fn failed(&self) -> String {
        format!("cannot copy to {} on machine {}", self.path, self.name)
    }

    fn when_lost(&self) -> String {
        let (name, path) = (&self.name, &self.path);
        format!(
            "gobs-app cannot know whether {path} was written on machine {name}; \
             `gobs-app get-file {name} {path}` shows what is there, and putting the file again \
             replaces it"
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;
    use crate::hob_net::wire::method;

    fn put(path: &str, content: Vec<u8>, mode: u32) -> PutFile {
        PutFile {
            name: "m1".parse().unwrap(),
            path: path.into(),
            mode: Some(FileMode(mode)),
            content: FileContent(content),
            local: PathBuf::new(),
            recursive: false,
            stream: false,
            io: None,
        }
    }

    fn sent(op: &PutFile) -> Result<(String, Vec<u8>, u32), String> {
        let (name, args) = method(crate::ops::MachineCall::message(op, Duration::ZERO)).unwrap();
        assert_eq!(name, "put-file");
        PutFile::read_args(&args)
    }

    #[test]
    fn arguments_round_trip_and_are_bounded() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(
            sent(&put("/tmp/x", all.clone(), 0o640)).unwrap(),
            ("/tmp/x".to_string(), all, 0o640)
        );
        let err = sent(&put("/tmp/x", vec![0; MAX_FILE + 1], 0o600)).unwrap_err();
        assert!(err.contains("at most 524288 bytes"), "{err}");
        assert!(
            sent(&put("/tmp/x", vec![], 0o10000))
                .unwrap_err()
                .contains("mode")
        );
    }

    #[test]
    fn the_boss_refuses_relative_paths_and_large_files_before_sending() {
        assert!(put("/tmp/x", vec![1], 0o600).check().is_ok());
        let err = put("tmp/x", vec![1], 0o600).check().unwrap_err();
        assert!(err.message.contains("not absolute"), "{err}");
        let err = put("/tmp/x", vec![0; MAX_FILE + 1], 0o600)
            .check()
            .unwrap_err();
        assert!(err.message.contains("at most 524288"), "{err}");
    }

    #[test]
    fn a_mode_not_given_is_the_default_on_the_wire_and_in_the_answer() {
        let op = PutFile {
            mode: None,
            ..put("/tmp/x", b"hi".to_vec(), 0)
        };
        assert_eq!(sent(&op).unwrap().2, FileMode::DEFAULT.0);
        let copied = op.answer(None);
        assert_eq!((copied.size, copied.mode), (2, FileMode::DEFAULT));
    }
}
