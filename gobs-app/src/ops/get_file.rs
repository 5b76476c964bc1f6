//! `get-file`: a file copied off a machine.
//!
//! On the hob wire: `get-file PATH` (an absolute path) → the file's bytes, at most
//! [`MAX_FILE`] of them: the boss refuses a larger answer whatever the machine sends.

use std::path::PathBuf;

use gobs_ocapn::captp::Term;
use gobs_ocapn::syrup::Value;
use serde::{Deserialize, Serialize};

use super::machine::MachineOp;
use crate::files::{FileContent, MAX_FILE, RemoteFile, check_remote_path};
use crate::hob_net::wire::{as_string, text};
use crate::model::{BackendError, MachineName};

// The command line's help for `get-file` is its entry's in the list of operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct GetFile {
    /// The machine's name
    pub name: MachineName,
    /// The file on the machine (an absolute path)
    #[arg(value_name = "REMOTE_PATH")]
    pub path: String,
    /// Where to write it, replacing the file whole (never half-written); `-` or nothing:
    /// standard output
    #[arg(value_name = "LOCAL_PATH")]
    #[serde(skip)]
    pub local: Option<PathBuf>,
}

impl MachineOp for GetFile {
    const NAME: &'static str = "get-file";
    const ON_FILES: bool = true;
    const ONLY_READS: bool = true;
    type Args = String;
    type Reply = Vec<u8>;
    type Answer = RemoteFile;

    fn machine(&self) -> &MachineName {
        &self.name
    }

    fn check(&self) -> Result<(), BackendError> {
        check_remote_path(self.name.as_str(), &self.path).map_err(BackendError::invalid)
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

    fn reply_term(bytes: &Vec<u8>) -> Term {
        Term::Data(Value::Bytes(bytes.clone()))
    }

    fn read_reply(t: &Term) -> Result<Vec<u8>, String> {
        match t.to_value() {
            Some(Value::Bytes(b)) if b.len() <= MAX_FILE => Ok(b),
            Some(Value::Bytes(b)) => Err(format!(
                "the machine answered get-file with {} bytes, more than the {MAX_FILE} it may \
                 send",
                b.len()
            )),
            _ => Err("the machine's answer to get-file is not the file's bytes".into()),
        }
    }

    fn answer(&self, bytes: Vec<u8>) -> RemoteFile {
        RemoteFile {
            machine: self.name.to_string(),
            path: self.path.clone(),
            content: FileContent(bytes),
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
        };
        let (name, args) = method(crate::ops::MachineCall::message(&op, Duration::ZERO)).unwrap();
        assert_eq!(name, "get-file");
        assert_eq!(GetFile::read_args(&args).unwrap(), "/tmp/x");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(
            GetFile::read_reply(&GetFile::reply_term(&all)).unwrap(),
            all
        );
        let big = GetFile::reply_term(&vec![0; MAX_FILE + 1]);
        assert!(GetFile::read_reply(&big).unwrap_err().contains("more than"));
        assert!(GetFile::read_reply(&text("no")).is_err());
        assert!(GetFile::read_args(&[]).is_err());
    }
}
