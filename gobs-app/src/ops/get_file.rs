//! `get-file`: a file, or with `-r` a directory tree, copied off a machine.
//!
//! The machine streams it ([`crate::files::archive`]): on the hob wire the boss sends
//! `get-stream PATH RECURSIVE SINK` and the machine pushes the stream to the sink
//! ([`crate::hob_net::copy_boss`]), which passes it on as the request's output; the command
//! line checks and writes it ([`crate::files::unpack`]). An older hob-client gets
//! `get-file PATH` (an absolute path) → the file's bytes, at most [`MAX_FILE`] of them: the
//! boss refuses a larger answer whatever the machine sends. A request that does not stream
//! (an older command line) gets the file's bytes in the answer, at most [`MAX_FILE`].

use std::path::PathBuf;

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;
use serde::{Deserialize, Serialize};

use super::machine::MachineOp;
use crate::files::{FileContent, MAX_FILE, RemoteFile, check_remote_path};
use crate::hob_net::answers::Call;
use crate::hob_net::wire::{as_string, text};
use crate::model::{BackendError, MachineName};
use crate::run_io::RunIo;

// The command line's help for `get-file` is its entry's in the list of operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct GetFile {
    /// The machine's name
    pub name: MachineName,
    /// The file (or with -r the directory) on the machine (an absolute path)
    #[arg(value_name = "REMOTE_PATH")]
    pub path: String,
    /// Where to write it, replacing it whole (never half-written; a directory too); `-` or
    /// nothing: standard output (a file only)
    #[arg(value_name = "LOCAL_PATH")]
    #[serde(skip)]
    pub local: Option<PathBuf>,
    /// Copy a directory and everything in it (files, subdirectories, symlinks as links)
    #[arg(short = 'r', long)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive: bool,
    /// The copy's stream comes back as the request's output, in frames
    /// ([`crate::daemon::stream`]); the command line sets it. Without it the answer
    /// carries the file's bytes, at most [`MAX_FILE`].
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// The copy's stream inside this process (on the standard output of
    /// [`crate::run_io`]); set by whoever takes it, never sent.
    #[arg(skip)]
    #[serde(skip)]
    pub io: Option<RunIo>,
}

/// What a machine sent for `get-file`: the file's bytes (the whole form), or, streamed, how
/// much it sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Got {
    /// The file's bytes, in the whole form (empty when streamed).
    pub content: Vec<u8>,
    /// Bytes sent.
    pub size: u64,
    /// Regular files sent.
    pub files: u64,
}

impl MachineOp for GetFile {
    const NAME: &'static str = "get-file";
    const ON_FILES: bool = true;
    const ONLY_READS: bool = true;
    type Args = String;
    type Reply = Got;
    type Answer = RemoteFile;

    fn machine(&self) -> &MachineName {
        &self.name
    }

    fn check(&self) -> Result<(), BackendError> {
        check_remote_path(self.name.as_str(), &self.path).map_err(BackendError::invalid)
    }

    fn call(&self, default_limit: std::time::Duration) -> Call {
        super::put_file::copy_call(Self::NAME, default_limit)
    }

    fn args(&self, _default_limit: std::time::Duration) -> Vec<Term> {
        vec![text(&self.path)]
    }

    fn read_args(args: &[Term]) -> Result<String, String> {
        let [path] = args else {
            return Err("get-file takes a path".into());
        };
        as_string(path).ok_or_else(|| "get-file takes a path (a string)".into())
    }

    fn reply_term(got: &Got) -> Term {
        Term::Data(Value::Bytes(got.content.clone()))
    }

    fn read_reply(t: &Term) -> Result<Got, String> {
        match t.to_value() {
            Some(Value::Bytes(b)) if b.len() <= MAX_FILE => Ok(Got {
                size: b.len() as u64,
                files: 1,
                content: b,
            }),
            Some(Value::Bytes(b)) => Err(format!(
                "the machine answered get-file with {} bytes, more than the {MAX_FILE} it may \
                 send",
                b.len()
            )),
            _ => Err("the machine's answer to get-file is not the file's bytes".into()),
        }
    }

    fn answer(&self, got: Got) -> RemoteFile {
        RemoteFile {
            machine: self.name.to_string(),
            path: self.path.clone(),
            content: FileContent(got.content),
            size: got.size,
            files: got.files,
        }
    }

    fn failed(&self) -> String {
        format!("cannot copy {} from machine {}", self.path, self.name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;
    use crate::hob_net::wire::method;

    #[test]
    fn arguments_and_answers_round_trip_and_answers_are_bounded() {
        let op = GetFile {
            name: "m1".parse().unwrap(),
            path: "/tmp/x".into(),
            local: None,
            recursive: false,
            stream: false,
            io: None,
        };
        let (name, args) = method(crate::ops::MachineCall::message(&op, Duration::ZERO)).unwrap();
        assert_eq!(name, "get-file");
        assert_eq!(GetFile::read_args(&args).unwrap(), "/tmp/x");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(
            GetFile::read_reply(&GetFile::reply_term(&Got {
                content: all.clone(),
                ..Got::default()
            }))
            .unwrap()
            .content,
            all
        );
        let big = GetFile::reply_term(&Got {
            content: vec![0; MAX_FILE + 1],
            ..Got::default()
        });
        assert!(GetFile::read_reply(&big).unwrap_err().contains("more than"));
        assert!(GetFile::read_reply(&text("no")).is_err());
        assert!(GetFile::read_args(&[]).is_err());
    }
}
